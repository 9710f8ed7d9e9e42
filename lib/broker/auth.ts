/*
 * Authentication of STOMP sessions. An Authenticator turns CONNECT
 * credentials (or an identity the transport already established, e.g. from a
 * session cookie) into a user name, or refuses with ERR_AUTH_FAILED.
 */
import { timingSafeEqual } from 'node:crypto';
import { BrokerError } from '../core/errors.js';

export interface Credentials {
  login?: string;
  passcode?: string;
  /** A bearer token from CONNECT `Authorization`/`passcode`, or the WebSocket URL. */
  token?: string;
  /** Identity the transport established before CONNECT (cookie, token on the URL). */
  transportUser?: string;
  /** jwt mode: the claims that transport identity carries. */
  transportClaims?: Readonly<Record<string, unknown>>;
}

/** Who the credentials name, and what else they say about them. */
export interface Identity {
  user: string;
  /** jwt mode: the token's claims (PERMISSIONS_CLAIM and rules with `claims` read them). */
  claims?: Readonly<Record<string, unknown>>;
}

export interface Authenticator {
  readonly mode: string;
  authenticate(credentials: Credentials): Promise<string>;
  /** As `authenticate`, with the claims when the credentials carry any. */
  identify?(credentials: Credentials): Promise<Identity>;
}

/** Printable, no spaces, and no ':' (as in HTTP Basic; it also keeps Redis key names unambiguous). */
const USER_NAME = /^[^\s\u0000-\u001f:]{1,128}$/;

export function validUserName(name: string): boolean {
  return USER_NAME.test(name);
}

/** Development mode: any non-empty login is that user, no password. */
export class OpenAuthenticator implements Authenticator {
  readonly mode = 'open';
  async authenticate(credentials: Credentials): Promise<string> {
    const user = credentials.transportUser ?? credentials.login;
    if (user === undefined || user === '') throw new BrokerError('ERR_AUTH_REQUIRED', 'a "login" header is required');
    if (!validUserName(user)) throw new BrokerError('ERR_AUTH_FAILED', 'invalid login');
    return user;
  }
}

/** Fixed users and passwords from configuration (`name:password,...`). */
export class StaticAuthenticator implements Authenticator {
  readonly mode = 'static';
  private readonly users = new Map<string, Buffer>();

  constructor(spec: string) {
    for (const [name, password] of StaticAuthenticator.parse(spec)) this.users.set(name, Buffer.from(password));
  }

  /** The user names of an AUTH_USERS value. */
  static userNames(spec: string): string[] {
    return StaticAuthenticator.parse(spec).map(([name]) => name);
  }

  private static parse(spec: string): Array<[string, string]> {
    return spec.split(',').map((entry) => {
      const colon = entry.indexOf(':');
      if (colon <= 0) throw new Error('AUTH_USERS entries must be name:password');
      return [entry.slice(0, colon).trim(), entry.slice(colon + 1)];
    });
  }

  async authenticate(credentials: Credentials): Promise<string> {
    if (credentials.transportUser !== undefined) return credentials.transportUser;
    const { login, passcode } = credentials;
    if (!login) throw new BrokerError('ERR_AUTH_REQUIRED', 'a "login" header is required');
    const expected = this.users.get(login);
    const given = Buffer.from(passcode ?? '');
    if (!expected || expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new BrokerError('ERR_AUTH_FAILED', 'wrong login or passcode');
    }
    return login;
  }
}

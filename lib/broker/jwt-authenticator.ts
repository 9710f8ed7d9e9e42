/*
 * AUTH_MODE=jwt: users arrive with a JSON Web Token minted by another
 * service. `sub` is the user name; `exp` is required and checked (a token
 * that never expires is refused); `iss`/`aud` when configured. Verification
 * is `jose`'s; the accepted algorithms are fixed by the configured key, so a
 * token cannot choose its own (no `none`, no HS256 signed with a public key).
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWSAlgorithm } from 'jose';
import { readPem } from '../pem.js';
import { validUserName, type Authenticator, type Credentials, type Identity } from './auth.js';
import { BrokerError } from '../core/errors.js';

export interface JwtOptions {
  /** HS256 (HS384, HS512) shared secret. */
  secret?: string;
  /** RS256 / ES256 (ES384, ES512, EdDSA) public key: PEM text, or a path to a PEM file. */
  publicKey?: string;
  issuer?: string;
  audience?: string;
  /** Clock skew tolerated on exp/nbf, seconds. @default 30 */
  clockToleranceSeconds?: number;
}

export interface VerifiedToken {
  user: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  claims: Readonly<Record<string, unknown>>;
}

const MAX_TOKEN_LENGTH = 16 * 1024;

export class JwtVerifier {
  private readonly key: KeyObject;
  private readonly algorithms: JWSAlgorithm[];

  constructor(private readonly options: JwtOptions) {
    if (options.secret && options.publicKey) throw new Error('AUTH_MODE=jwt: set JWT_SECRET or JWT_PUBLIC_KEY, not both');
    if (options.secret) {
      this.key = createSecretKey(Buffer.from(options.secret, 'utf8'));
      this.algorithms = ['HS256', 'HS384', 'HS512'];
    } else if (options.publicKey) {
      this.key = createPublicKey(readPem(options.publicKey));
      this.algorithms = algorithmsFor(this.key);
    } else {
      throw new Error('AUTH_MODE=jwt needs JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256/ES256 PEM)');
    }
  }

  /** Whether the secret is shorter than the hash (weak HS256 keys are guessable offline). */
  get weakSecret(): boolean {
    return this.options.secret !== undefined && Buffer.byteLength(this.options.secret) < 32;
  }

  /** The user of a valid token; ERR_AUTH_FAILED (with the reason) otherwise. */
  async verify(token: string): Promise<VerifiedToken> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new BrokerError('ERR_AUTH_FAILED', 'invalid token');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: this.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSeconds ?? 30,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      throw new BrokerError('ERR_AUTH_FAILED', `invalid token: ${reason(error)}`);
    }
    const user = payload.sub;
    if (typeof user !== 'string' || !validUserName(user)) throw new BrokerError('ERR_AUTH_FAILED', 'invalid token: "sub" is not a valid user name');
    return { user, expiresAt: payload.exp! * 1000, claims: payload };
  }
}

/**
 * STOMP CONNECT in jwt mode: the token comes as `passcode` (what stomp.js
 * and Spring clients can set) or as `Authorization: Bearer` (the CONNECT
 * handler passes it as `token`). An identity the transport established
 * (cookie, `access_token` on the URL) wins: CONNECT cannot switch user.
 */
export class JwtAuthenticator implements Authenticator {
  readonly mode = 'jwt';

  constructor(readonly verifier: JwtVerifier) {}

  async authenticate(credentials: Credentials): Promise<string> {
    return (await this.identify(credentials)).user;
  }

  /**
   * A transport identity carries the claims it was established with: a JWT's
   * on the URL or in `Authorization`, or those the login put into the session
   * cookie (the ones the permissions read).
   */
  async identify(credentials: Credentials): Promise<Identity> {
    if (credentials.transportUser !== undefined) {
      return credentials.transportClaims === undefined ? { user: credentials.transportUser } : { user: credentials.transportUser, claims: credentials.transportClaims };
    }
    const token = credentials.token ?? credentials.passcode;
    if (token === undefined || token === '') {
      throw new BrokerError('ERR_AUTH_REQUIRED', 'a JWT is required: send it as "passcode" or "Authorization: Bearer <token>"');
    }
    const { user, claims } = await this.verifier.verify(token);
    return { user, claims };
  }
}

function algorithmsFor(key: KeyObject): JWSAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      throw new Error(`JWT_PUBLIC_KEY: unsupported EC curve ${curve ?? 'unknown'}`);
    }
    case 'ed25519':
      return ['EdDSA'];
    default:
      throw new Error(`JWT_PUBLIC_KEY: unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

function reason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim "${error.claim}" ${error.reason}`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  return 'malformed';
}

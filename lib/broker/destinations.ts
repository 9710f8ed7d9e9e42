/*
 * Destination names, Spring's conventions: `/topic/...` (every subscriber),
 * `/queue/...` (one consumer per message), user destinations (`/user/...`)
 * and application destinations (`/app/...`).
 *
 * A user destination has two forms:
 * - subscribe form `/user/queue/reply`: "my own /queue/reply";
 * - send form `/user/{name}/queue/reply`: "alice's /queue/reply".
 * The name is URL-decoded so user names may contain `/` as `%2F` (as Spring).
 */
import { validUserName } from './auth.js';
import { BrokerError } from '../core/errors.js';

export interface DestinationPrefixes {
  topicPrefix: string;
  queuePrefix: string;
  userPrefix: string;
  appPrefix: string;
}

export type Destination =
  | { kind: 'topic'; name: string }
  | { kind: 'queue'; name: string }
  /** `/user/queue/x` subscribed by the session's own user (or `/user/{self}/queue/x`). */
  | { kind: 'user'; user: string; target: string }
  | { kind: 'app'; name: string };

const MAX_DESTINATION_LENGTH = 1024;

export class DestinationParser {
  constructor(private readonly prefixes: DestinationPrefixes) {}

  /** Parses a SEND destination. */
  forSend(destination: string | undefined): Destination {
    const name = this.validate(destination);
    const { userPrefix, appPrefix } = this.prefixes;
    if (name.startsWith(userPrefix)) return this.userSendForm(name);
    if (name.startsWith(appPrefix)) return { kind: 'app', name };
    return this.brokerDestination(name);
  }

  /** Parses a SUBSCRIBE destination for a session of `self`. */
  forSubscribe(destination: string | undefined, self: string): Destination {
    const name = this.validate(destination);
    const { userPrefix } = this.prefixes;
    if (name.startsWith(userPrefix)) {
      const rest = '/' + name.slice(userPrefix.length);
      if (this.isBrokerTarget(rest)) return { kind: 'user', user: self, target: rest };
      const explicit = this.userSendForm(name);
      if (explicit.kind === 'user' && explicit.user !== self) {
        throw new BrokerError('ERR_FORBIDDEN', `user "${self}" may not subscribe to another user's destination ${name}`);
      }
      return explicit;
    }
    return this.brokerDestination(name);
  }

  /**
   * A destination an application replies to on behalf of `self` (the
   * APP_PROXY_URL contract): the subscribe form `/user/queue/x` is self's own,
   * as Spring's @SendToUser; anything else is parsed as a SEND would be.
   */
  forReply(destination: string | undefined, self: string): Destination {
    const name = this.validate(destination);
    const { userPrefix } = this.prefixes;
    if (name.startsWith(userPrefix) && this.isBrokerTarget('/' + name.slice(userPrefix.length))) {
      return { kind: 'user', user: self, target: '/' + name.slice(userPrefix.length) };
    }
    return this.forSend(name);
  }

  /** The user destination's subscribe form, as MESSAGE frames carry it (as Spring does). */
  subscribeForm(target: string): string {
    return this.prefixes.userPrefix.replace(/\/$/, '') + target;
  }

  private userSendForm(name: string): Destination {
    const rest = name.slice(this.prefixes.userPrefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) throw new BrokerError('ERR_UNKNOWN_DESTINATION', `user destination ${name} names no user and destination`);
    let user: string;
    try {
      user = decodeURIComponent(rest.slice(0, slash));
    } catch {
      throw new BrokerError('ERR_UNKNOWN_DESTINATION', `user destination ${name} has a malformed user name`);
    }
    // As every path names users (CONNECT, the HTTP API): no ':' nor control characters in a Redis key.
    if (!validUserName(user)) throw new BrokerError('ERR_UNKNOWN_DESTINATION', `user destination ${name.slice(0, 64)} names no valid user`);
    const target = rest.slice(slash);
    if (!this.isBrokerTarget(target)) {
      throw new BrokerError(
        'ERR_UNKNOWN_DESTINATION',
        `user destination ${name} must address ${this.prefixes.topicPrefix}... or ${this.prefixes.queuePrefix}...`,
      );
    }
    return { kind: 'user', user, target };
  }

  private brokerDestination(name: string): Destination {
    if (name.startsWith(this.prefixes.topicPrefix) && name.length > this.prefixes.topicPrefix.length) return { kind: 'topic', name };
    if (name.startsWith(this.prefixes.queuePrefix) && name.length > this.prefixes.queuePrefix.length) return { kind: 'queue', name };
    throw new BrokerError(
      'ERR_UNKNOWN_DESTINATION',
      `unknown destination ${name}: use ${this.prefixes.topicPrefix}..., ${this.prefixes.queuePrefix}... or ${this.prefixes.userPrefix}...`,
    );
  }

  private isBrokerTarget(target: string): boolean {
    const { topicPrefix, queuePrefix } = this.prefixes;
    return (
      (target.startsWith(topicPrefix) && target.length > topicPrefix.length) ||
      (target.startsWith(queuePrefix) && target.length > queuePrefix.length)
    );
  }

  private validate(destination: string | undefined): string {
    if (destination === undefined) throw new BrokerError('ERR_MISSING_HEADER', 'missing "destination" header');
    if (destination.length === 0 || destination.length > MAX_DESTINATION_LENGTH || !destination.startsWith('/')) {
      throw new BrokerError('ERR_INVALID_HEADER', `invalid destination "${destination.slice(0, 64)}"`);
    }
    return destination;
  }
}

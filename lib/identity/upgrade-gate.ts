/*
 * The WebSocket handshake's gate (and each SockJS request's): refuses a
 * page of a foreign origin (it would ride on the victim's cookie), then
 * establishes who the client is from the cookie, a bearer header or an
 * `access_token` on the URL. An identity found here is the session's user:
 * CONNECT's login cannot change it.
 */
import type { IncomingMessage } from 'node:http';
import { BrokerError } from '../core/errors.js';
import type { Logger } from '../log.js';
import type { UpgradeDecision, UpgradeGate } from '../transport/websocket-server.js';
import type { IdentityResolver } from './identity.js';
import type { OriginPolicy } from './origin-policy.js';

/** Refusals are logged once here (info), with the path but never the URL's query (it may hold a token). */
export function createUpgradeGate(identity: IdentityResolver, origins: OriginPolicy, log?: Logger): UpgradeGate {
  const refuse = (request: IncomingMessage, status: number, code: string, reason: string): UpgradeDecision => {
    log?.info({ code, path: (request.url ?? '').split('?')[0], origin: request.headers.origin, detail: reason }, 'handshake refused');
    return { accept: false, status, code, reason };
  };
  return async (request: IncomingMessage): Promise<UpgradeDecision> => {
    if (!origins.allows(request.headers)) return refuse(request, 403, 'ERR_FORBIDDEN', 'origin not allowed');
    try {
      const found = await identity.resolve(request.headers, request.url, { query: true });
      return { accept: true, user: found?.user, claims: found?.claims };
    } catch (error) {
      if (error instanceof BrokerError) return refuse(request, error.httpStatus, error.code, error.message);
      throw error;
    }
  };
}

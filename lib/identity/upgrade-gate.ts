/*
 * The WebSocket handshake's gate (and each SockJS request's): refuses a
 * page of a foreign origin (it would ride on the victim's cookie), then
 * establishes who the client is from the cookie, a bearer header or an
 * `access_token` on the URL. An identity found here is the session's user:
 * CONNECT's login cannot change it.
 */
import type { IncomingMessage } from 'node:http';
import { BrokerError } from '../broker/errors.js';
import type { UpgradeDecision, UpgradeGate } from '../transport/websocket-server.js';
import type { IdentityResolver } from './identity.js';
import type { OriginPolicy } from './origin-policy.js';

export function createUpgradeGate(identity: IdentityResolver, origins: OriginPolicy): UpgradeGate {
  return async (request: IncomingMessage): Promise<UpgradeDecision> => {
    if (!origins.allows(request.headers)) {
      return { accept: false, status: 403, code: 'ERR_FORBIDDEN', reason: 'origin not allowed' };
    }
    try {
      const found = await identity.resolve(request.headers, request.url, { query: true });
      return { accept: true, user: found?.user };
    } catch (error) {
      if (error instanceof BrokerError) return { accept: false, status: error.httpStatus, code: error.code, reason: error.message };
      throw error;
    }
  };
}

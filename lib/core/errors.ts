import type { StompCodecErrorCode } from '../stomp/errors.js';

/**
 * Every error the broker reports has a stable code. This table is the one
 * place that maps a code to its STOMP consequence (does the session end?) and
 * to its HTTP status.
 */
export type BrokerErrorCode =
  | 'ERR_NOT_CONNECTED'
  | 'ERR_ALREADY_CONNECTED'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_UNKNOWN_COMMAND'
  | 'ERR_MISSING_HEADER'
  | 'ERR_INVALID_HEADER'
  | 'ERR_AUTH_REQUIRED'
  | 'ERR_AUTH_FAILED'
  | 'ERR_FORBIDDEN'
  | 'ERR_UNKNOWN_DESTINATION'
  | 'ERR_DUPLICATE_SUBSCRIPTION'
  | 'ERR_UNKNOWN_SUBSCRIPTION'
  | 'ERR_UNKNOWN_TRANSACTION'
  | 'ERR_DUPLICATE_TRANSACTION'
  | 'ERR_UNKNOWN_ACK'
  | 'ERR_HEARTBEAT_TIMEOUT'
  | 'ERR_SLOW_CONSUMER'
  | 'ERR_QUEUE_FULL'
  | 'ERR_RELAY_FULL'
  | 'ERR_INBOX_FULL'
  | 'ERR_TOO_MANY_SUBSCRIPTIONS'
  | 'ERR_TOO_MANY_TRANSACTIONS'
  | 'ERR_TRANSACTION_TOO_LARGE'
  | 'ERR_TOO_MANY_UNACKED'
  | 'ERR_INPUT_OVERFLOW'
  | 'ERR_TOO_MANY_CONNECTIONS'
  | 'ERR_RATE_LIMITED'
  | 'ERR_UNKNOWN_USER'
  | 'ERR_CLUSTER_UNAVAILABLE'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_STARTING'
  | 'ERR_BAD_REQUEST'
  | 'ERR_NOT_FOUND'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_APP_UNAVAILABLE'
  | 'ERR_APP_TIMEOUT'
  | 'ERR_APP_REJECTED'
  | 'ERR_APP_BAD_RESPONSE'
  | 'ERR_INTERNAL';

export type ErrorCode = BrokerErrorCode | StompCodecErrorCode;

interface ErrorDisposition {
  http: number;
}

export const ERROR_DISPOSITIONS: Readonly<Record<ErrorCode, ErrorDisposition>> = {
  ERR_STOMP_MALFORMED_FRAME: { http: 400 },
  ERR_STOMP_INVALID_ESCAPE: { http: 400 },
  ERR_STOMP_INVALID_CONTENT_LENGTH: { http: 400 },
  ERR_STOMP_MISSING_NUL: { http: 400 },
  ERR_STOMP_FRAME_TOO_LARGE: { http: 413 },
  ERR_STOMP_BODY_TOO_LARGE: { http: 413 },
  ERR_STOMP_TOO_MANY_HEADERS: { http: 400 },
  ERR_STOMP_HEADER_LINE_TOO_LONG: { http: 400 },
  ERR_NOT_CONNECTED: { http: 400 },
  ERR_ALREADY_CONNECTED: { http: 400 },
  ERR_UNSUPPORTED_VERSION: { http: 400 },
  ERR_UNKNOWN_COMMAND: { http: 400 },
  ERR_MISSING_HEADER: { http: 400 },
  ERR_INVALID_HEADER: { http: 400 },
  ERR_AUTH_REQUIRED: { http: 401 },
  ERR_AUTH_FAILED: { http: 401 },
  ERR_FORBIDDEN: { http: 403 },
  ERR_UNKNOWN_DESTINATION: { http: 400 },
  ERR_DUPLICATE_SUBSCRIPTION: { http: 409 },
  ERR_UNKNOWN_SUBSCRIPTION: { http: 404 },
  ERR_UNKNOWN_TRANSACTION: { http: 404 },
  ERR_DUPLICATE_TRANSACTION: { http: 409 },
  ERR_UNKNOWN_ACK: { http: 404 },
  ERR_HEARTBEAT_TIMEOUT: { http: 408 },
  ERR_SLOW_CONSUMER: { http: 429 },
  ERR_QUEUE_FULL: { http: 507 },
  ERR_RELAY_FULL: { http: 503 },
  ERR_INBOX_FULL: { http: 507 },
  ERR_TOO_MANY_SUBSCRIPTIONS: { http: 429 },
  ERR_TOO_MANY_TRANSACTIONS: { http: 429 },
  ERR_TRANSACTION_TOO_LARGE: { http: 413 },
  ERR_TOO_MANY_UNACKED: { http: 429 },
  ERR_INPUT_OVERFLOW: { http: 429 },
  ERR_TOO_MANY_CONNECTIONS: { http: 503 },
  ERR_RATE_LIMITED: { http: 429 },
  ERR_UNKNOWN_USER: { http: 404 },
  ERR_CLUSTER_UNAVAILABLE: { http: 503 },
  ERR_SHUTTING_DOWN: { http: 503 },
  ERR_STARTING: { http: 503 },
  ERR_BAD_REQUEST: { http: 400 },
  ERR_NOT_FOUND: { http: 404 },
  ERR_PAYLOAD_TOO_LARGE: { http: 413 },
  ERR_UNSUPPORTED_MEDIA_TYPE: { http: 415 },
  ERR_METHOD_NOT_ALLOWED: { http: 405 },
  // The application behind APP_PROXY_URL (lib/http/app-proxy.ts): unreachable, too slow,
  // answered non-2xx, or answered something that is not the reply contract.
  ERR_APP_UNAVAILABLE: { http: 502 },
  ERR_APP_TIMEOUT: { http: 504 },
  ERR_APP_REJECTED: { http: 502 },
  ERR_APP_BAD_RESPONSE: { http: 502 },
  ERR_INTERNAL: { http: 500 },
};

/** Marks every BrokerError, whichever copy of this module made it. */
const BRAND = Symbol.for('stompbox.BrokerError');

export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly [BRAND] = true;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  /**
   * By brand, not prototype: a test runner that loads a module both through
   * require and through import (mocha with tsx, for the Redis parts imported
   * dynamically) holds two copies of this class, and a BrokerError from one
   * must not pass for a foreign failure in the other (it would be re-wrapped
   * as ERR_CLUSTER_UNAVAILABLE).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }

  get httpStatus(): number {
    return ERROR_DISPOSITIONS[this.code].http;
  }
}

/** Any thrown value as a BrokerError: unknown failures become ERR_INTERNAL. */
export function toBrokerError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code in ERROR_DISPOSITIONS) {
    return new BrokerError(error.code as ErrorCode, error.message);
  }
  return new BrokerError('ERR_INTERNAL', 'internal error');
}

import type { Middleware } from 'koa';
import { BrokerError, toBrokerError } from '../core/errors.js';
import type { Logger } from '../log.js';

/**
 * The one place HTTP errors are shaped: every failure leaves as
 * `{error: {code, message}}` with the status its code maps to; nothing
 * unhandled reaches a client as a stack trace.
 */
export function errorMiddleware(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new BrokerError('ERR_NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (error) {
      const brokerError = fromHttpError(error);
      if (brokerError.code === 'ERR_INTERNAL') log.error({ err: error, path: ctx.path }, 'internal error in HTTP handler');
      else log.info({ code: brokerError.code, path: ctx.path, detail: brokerError.message }, 'HTTP request refused');
      ctx.status = brokerError.httpStatus;
      ctx.body = { error: { code: brokerError.code, message: brokerError.message } };
    }
  };
}

/** Errors thrown by koa's body parser and friends carry an HTTP status; map them to codes. */
function fromHttpError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  const status = typeof error === 'object' && error !== null && 'status' in error ? Number(error.status) : 0;
  const message = error instanceof Error ? error.message : 'bad request';
  if (status === 413) return new BrokerError('ERR_PAYLOAD_TOO_LARGE', 'request body too large');
  if (status === 415) return new BrokerError('ERR_UNSUPPORTED_MEDIA_TYPE', message);
  if (status === 405) return new BrokerError('ERR_METHOD_NOT_ALLOWED', message);
  if (status === 501) return new BrokerError('ERR_METHOD_NOT_ALLOWED', message);
  if (status === 404) return new BrokerError('ERR_NOT_FOUND', message);
  // The body parser's syntax errors: say what was wrong without echoing internals.
  if (status === 400 && error instanceof SyntaxError) return new BrokerError('ERR_BAD_REQUEST', 'malformed JSON body');
  if (status >= 400 && status < 500) return new BrokerError('ERR_BAD_REQUEST', message);
  return toBrokerError(error);
}

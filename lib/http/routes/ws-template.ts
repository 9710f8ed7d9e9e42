/*
 * The seed's two routes (seed 002), so its page works unchanged but for its
 * script URLs:
 *
 * POST /wsTemplate/sendToUser  (form or JSON: receiver, msg)
 *   delivers `{"content":"<sender> say: <msg>"}` to the receiver's
 *   `/user/{receiver}/topic/reply`, or keeps it in the receiver's inbox.
 * POST /wsTemplate/pullUnreadMessage  (form or JSON: destination, e.g. /topic/reply)
 *   → `{"code":"200","result":[<stored body>, ...]}`, taking them atomically
 *   (the seed's read-then-delete lost what arrived in between). The seed's
 *   contract stays: what is returned is deleted, so an answer that never
 *   reaches the page is lost; POST /api/inbox/claim + /api/inbox/ack is the
 *   pull that cannot lose;
 *   a failure of the store → `{"code":"500","msg":...}` with HTTP 200, as the
 *   seed's page reads `data.code`.
 * Bad input (missing field, not logged in) is a 4xx JSON error like every API route.
 */
import type { RouterInstance } from '@koa/router';
import type { Broker } from '../../broker/broker.js';
import { BrokerError, toBrokerError } from '../../core/errors.js';
import type { Logger } from '../../log.js';
import { identityOf, requireUser } from '../auth.js';
import { checkUserName, ownTarget, sendToUser, userTarget } from '../broker-api.js';
import { readFields, requireString } from '../body.js';
import { bodyString } from '../message-json.js';

/** The seed's WebSocketChannelEnum.CHAT subscribe URL. */
export const SEED_REPLY_TARGET = '/topic/reply';

export function registerWsTemplateRoutes(router: RouterInstance, broker: Broker, log: Logger): void {
  router.post('/wsTemplate/sendToUser', async (ctx) => {
    const sender = requireUser(ctx);
    const fields = readFields(ctx, ['form', 'json']);
    const receiver = checkUserName(requireString(fields, 'receiver', 128), 'receiver');
    const msg = requireString(fields, 'msg', broker.config.maxBodySize);
    const target = userTarget(broker, receiver, SEED_REPLY_TARGET);
    const body = Buffer.from(JSON.stringify({ content: `${sender} say: ${msg}` }), 'utf8');
    const id = await sendToUser(broker, {
      sender,
      claims: identityOf(ctx)?.claims,
      to: receiver,
      target: target.target,
      destination: target.destination,
      body,
      headers: { 'content-type': 'application/json;charset=UTF-8' },
    });
    ctx.body = { code: '200', msg: 'ok', id };
  });

  router.post('/wsTemplate/pullUnreadMessage', async (ctx) => {
    const user = requireUser(ctx);
    const fields = readFields(ctx, ['form', 'json']);
    const target = ownTarget(broker, user, requireString(fields, 'destination', 1024));
    try {
      const messages = await broker.inbox.take(user, target);
      ctx.body = { code: '200', result: messages.map((m) => bodyString(m.body)) };
    } catch (error) {
      const failure = error instanceof BrokerError ? error : toBrokerError(error);
      log.error({ err: error, user, destination: target }, 'pullUnreadMessage failed');
      ctx.body = { code: '500', msg: failure.code === 'ERR_INTERNAL' ? 'the inbox store failed' : failure.message };
    }
  });
}

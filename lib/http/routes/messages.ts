/*
 * Sending and the offline inbox over HTTP.
 *
 * POST /api/messages {to, destination, body, encoding?, headers?} → 202 {id}
 *   once the message is delivered, relayed to the receiver's nodes, or
 *   stored in the receiver's inbox (the same acceptance as a STOMP SEND's
 *   RECEIPT). `destination` is the target within the receiver's user
 *   destinations (`/queue/reply`); the message arrives on the receiver's
 *   subscription to `/user/queue/reply`. The sender is the caller.
 * GET /api/inbox[?destination=&limit=]  peek at the caller's own inbox.
 * POST /api/inbox/pull {destination, max?}  atomic take, in order: the
 *   messages are deleted as they are returned, so a client that dies before
 *   reading the answer loses them. Claim + ack (inbox-claims.ts) cannot lose.
 */
import type { RouterInstance } from '@koa/router';
import type { Broker } from '../../broker/broker.js';
import { BrokerError } from '../../core/errors.js';
import { identityOf, requireUser } from '../auth.js';
import { checkHeaders, checkUserName, ownTarget, readBody, sendToUser, userTarget } from '../broker-api.js';
import { optionalCount, optionalString, readFields, requireString } from '../body.js';
import { messageToJson } from '../message-json.js';

const PEEK_DEFAULT = 100;
const PEEK_MAX = 1000;

export function registerMessageRoutes(router: RouterInstance, broker: Broker): void {
  router.post('/api/messages', async (ctx) => {
    const sender = requireUser(ctx);
    const claims = identityOf(ctx)?.claims;
    const fields = readFields(ctx, ['json']);
    const to = checkUserName(requireString(fields, 'to', 128), 'to');
    const target = userTarget(broker, to, requireString(fields, 'destination', 1024));
    const body = readBody(fields, broker.config.maxBodySize);
    const headers = checkHeaders(fields.headers);
    const id = await sendToUser(broker, { sender, claims, to, target: target.target, destination: target.destination, body, headers });
    ctx.status = 202;
    ctx.body = { id };
  });

  router.get('/api/inbox', async (ctx) => {
    const user = requireUser(ctx);
    const destination = ctx.query.destination;
    if (destination === undefined) {
      ctx.body = { user, destinations: await broker.inbox.list(user) };
      return;
    }
    if (typeof destination !== 'string' || destination === '') throw new BrokerError('ERR_BAD_REQUEST', 'query "destination" must be one string');
    const target = ownTarget(broker, user, destination);
    const limit = optionalCount(ctx.query.limit, 'limit', PEEK_DEFAULT, PEEK_MAX);
    const [messages, depth] = await Promise.all([broker.inbox.peek(user, target, limit), broker.inbox.depth(user, target)]);
    ctx.body = { user, destination: target, depth, messages: messages.map(messageToJson) };
  });

  router.post('/api/inbox/pull', async (ctx) => {
    const user = requireUser(ctx);
    const fields = readFields(ctx, ['json']);
    const target = ownTarget(broker, user, requireString(fields, 'destination', 1024));
    const max = optionalCount(fields.max, 'max', Infinity, Infinity);
    const messages = await broker.inbox.take(user, target, max);
    ctx.body = { user, destination: target, messages: messages.map(messageToJson) };
  });
}

/*
 * A pull that cannot lose: claim + ack over HTTP.
 *
 * POST /api/inbox/claim {destination, max?, visibilityTimeoutMs?}
 *   → 200 {user, destination, claimId, messages, expiresAt}
 *   The messages (oldest first, each with its `id`) leave the inbox but are
 *   deleted only when acked; what is not acked within the visibility timeout
 *   (INBOX_CLAIM_TIMEOUT_MS unless given, at most MAX_INBOX_CLAIM_TIMEOUT_MS)
 *   returns to the head of the inbox, in order, on whichever node sees it
 *   first — a client that dies between the claim and the ack loses nothing.
 *   Nothing stored: `claimId` and `expiresAt` are null.
 * POST /api/inbox/ack {claimId, ids?}  (ids omitted: the whole claim)
 *   → 200 {claimId, acked, left, expired}
 *   An ack after the timeout acks nothing (`acked: 0, expired: true`): the
 *   messages are back in the inbox and will be delivered again, so a late
 *   ack may mean a duplicate (same message id). An unknown claim, or another
 *   user's: 404 ERR_NOT_FOUND.
 */
import type { RouterInstance } from '@koa/router';
import type { Broker } from '../../broker/broker.js';
import { BrokerError } from '../../core/errors.js';
import { MAX_INBOX_CLAIM_TIMEOUT_MS } from '../../config.js';
import { requireUser } from '../auth.js';
import { ownTarget } from '../broker-api.js';
import { optionalCount, readFields, requireString, type Fields } from '../body.js';
import { messageToJson } from '../message-json.js';

/** Most messages one claim hands out. */
const CLAIM_MAX = 1000;
/** Most ids one ack names (a claim holds at most CLAIM_MAX). */
const ACK_MAX_IDS = CLAIM_MAX;

export function registerInboxClaimRoutes(router: RouterInstance, broker: Broker): void {
  router.post('/api/inbox/claim', async (ctx) => {
    const user = requireUser(ctx);
    const fields = readFields(ctx, ['json']);
    const target = ownTarget(broker, user, requireString(fields, 'destination', 1024));
    const max = optionalCount(fields.max, 'max', CLAIM_MAX, CLAIM_MAX);
    const timeoutMs = optionalCount(fields.visibilityTimeoutMs, 'visibilityTimeoutMs', broker.config.inboxClaimTimeoutMs, MAX_INBOX_CLAIM_TIMEOUT_MS);
    const claim = await broker.inbox.claimTimed(user, target, max, timeoutMs);
    ctx.body = { user, destination: target, claimId: claim.claimId, messages: claim.messages.map(messageToJson), expiresAt: claim.expiresAt };
  });

  router.post('/api/inbox/ack', async (ctx) => {
    const user = requireUser(ctx);
    const fields = readFields(ctx, ['json']);
    const claimId = requireString(fields, 'claimId', 128);
    const answer = await broker.inbox.ackTimed(user, claimId, readIds(fields));
    if (!answer) throw new BrokerError('ERR_NOT_FOUND', 'no such claim');
    ctx.body = { claimId, ...answer };
  });
}

function readIds(fields: Fields): string[] | undefined {
  const ids = fields.ids;
  if (ids === undefined || ids === null) return undefined;
  if (!Array.isArray(ids) || ids.length > ACK_MAX_IDS || !ids.every((id): id is string => typeof id === 'string' && id.length > 0 && id.length <= 256)) {
    throw new BrokerError('ERR_BAD_REQUEST', `field "ids" must be an array of at most ${ACK_MAX_IDS} message ids`);
  }
  return ids;
}

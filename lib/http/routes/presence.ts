/*
 * Who is online, and the cluster as the admin page shows it.
 * GET /api/presence[?limit=]  {online, users}   (users bounded by limit, ≤ 1000)
 * GET /api/presence/:user     {user, online, nodes}
 * GET /api/cluster            nodes with their counts, this node's stats
 */
import type { RouterInstance } from '@koa/router';
import type { Broker } from '../../broker/broker.js';
import { requireUser } from '../auth.js';
import { checkUserName } from '../broker-api.js';
import { optionalCount } from '../body.js';

const USERS_DEFAULT = 100;
const USERS_MAX = 1000;

export function registerPresenceRoutes(router: RouterInstance, broker: Broker): void {
  router.get('/api/presence', async (ctx) => {
    requireUser(ctx);
    const limit = optionalCount(ctx.query.limit, 'limit', USERS_DEFAULT, USERS_MAX);
    const [online, users] = await Promise.all([broker.presence.onlineCount(), broker.presence.onlineUsers(limit)]);
    ctx.body = { online, users };
  });

  router.get('/api/presence/:user', async (ctx) => {
    requireUser(ctx);
    const user = checkUserName(ctx.params.user ?? '', 'user');
    const nodes = await broker.presence.nodesOf(user);
    ctx.body = { user, online: nodes.length > 0, nodes };
  });

  router.get('/api/cluster', async (ctx) => {
    requireUser(ctx);
    const [nodes, online, deadLetters, recovering] = await Promise.all([
      broker.presence.liveNodes(),
      broker.presence.onlineCount(),
      broker.relay.deadLetterCount(),
      broker.presence.pendingRecoveries(),
    ]);
    const s = broker.stats;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      self: broker.nodeId,
      online,
      deadLetters,
      recovering,
      nodes: nodes
        .map((node) => ({
          id: node.id,
          connections: node.connections,
          sessions: node.sessions,
          startedAt: node.startedAt,
          lastBeat: node.lastBeat,
          url: node.url ?? null,
        }))
        .sort((a, b) => a.id.localeCompare(b.id)),
      stats: {
        framesIn: s.framesIn,
        framesOut: s.framesOut,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        messagesDelivered: s.messagesDelivered,
        routedLocal: s.routedLocal,
        routedRemote: s.routedRemote,
        storedInbox: s.storedInbox,
        relayReceived: s.relayReceived,
        sessions: broker.sessions.size,
        errors: Object.fromEntries(s.errors),
      },
    };
  });
}

/*
 * What the decision script costs Redis a call at moderate rates: EVALSHA
 * paced at one call a millisecond on a private Redis (its caches cold for
 * each call, as at 1 000 msg/s over 10 pairs), `INFO commandstats` µs a call,
 * for route.lua and for smaller scripts beside it to price its parts.
 *
 *   npx tsx scripts/bench/script-paced.ts [--calls 3000] [--rounds 2]
 *
 * route.lua is called as the router calls it for one message to a user
 * subscribed on another node that is a candidate with a stream (the common
 * case at 1 000 msg/s): one subscription, one candidate, a 100-byte body.
 * Nested commands are listed for it (their own time, within the script's).
 * Last, the same as a Redis Function (FCALL), for comparison.
 * Figures: docs/bench/two-node-profile.md, "Session 15".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { encodeEnvelope } from '../../lib/cluster/envelope-codec.js';
import { RedisKeys } from '../../lib/cluster/redis-keys.js';
import { LUA_DIR, script } from '../../lib/cluster/redis-scripts.js';
import { MAX_ENTRY_BYTES } from '../../lib/cluster/redis-user-router.js';
import { startPrivateRedis } from './lib/spawned.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '2' } } });
const calls = Number(values.calls);

const route = script('route');
const routeLib = route.lua.slice(0, route.lua.length - route.own.length);
const wholeLib = readFileSync(join(LUA_DIR, 'lib.lua'), 'utf8');

const keys = new RedisKeys('sb:');
const user = 'bench-r1';
const destination = '/queue/bench';
const stream = keys.stream('b');
const routeKeys = [keys.subs(user, destination), keys.inbox(user, destination), keys.inboxes(user), keys.inboxBytes(user), stream, keys.streamBytes('b')];
const envelope = encodeEnvelope({
  kind: 'user',
  user,
  destination,
  message: { id: 'n-abc-123456', destination: `/user/${user}${destination}`, body: Buffer.alloc(100, 120), headers: { 'content-type': 'text/plain' }, sender: 'bench-s1', timestamp: Date.now() },
});
const bodies = Buffer.alloc(4 + envelope.length);
bodies.writeUInt32BE(envelope.length, 0);
envelope.copy(bodies, 4);
// route.lua's ARGV (see its header): self, inbox limits, stream limits, no gone nodes, one candidate, one subscription, heads, bodies, push.
const routeArgs = ['a', 1000, 3600, 'refuse', 1 << 20, 64 << 20, MAX_ENTRY_BYTES, 0, 1, 'b', 1, Buffer.from([0, 0, 0, 0, 0]), bodies, '1'];

const variants: Array<{ name: string; lua: string; keys: string[]; args: Array<string | number | Buffer> }> = [
  { name: "'return 1'", lua: '#!lua\nreturn 1', keys: [], args: [] },
  { name: "all of lib.lua + 'return 1'", lua: `#!lua\n${wholeLib}\nreturn 1`, keys: [], args: [] },
  { name: "route.lua's lib.lua parts + 'return 1'", lua: `${routeLib}\nreturn 1`, keys: [], args: [] },
  { name: "the bare relay's script (XADD + PUBLISH), route's arguments", lua: "#!lua\nredis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'e', ARGV[13])\nredis.call('PUBLISH', 'bare', ARGV[13])\nreturn 1", keys: routeKeys, args: routeArgs },
  { name: 'route.lua, one message to a candidate', lua: route.lua, keys: routeKeys, args: routeArgs },
];
/**
 * route.lua as a Redis Function (FUNCTION LOAD: its lib.lua parts made once per load, the
 * script's body the registered function): what that would save a call, for comparison only.
 */
const routeFunction = `#!lua name=sbpaced\n${routeLib.slice(routeLib.indexOf('\n') + 1)}\nredis.register_function('sb_paced_route', function(KEYS, ARGV)\n${route.own}\nend)\n`;

const redis = await startPrivateRedis();
const client = new Redis(redis.url);
try {
  await client.hset(keys.subs(user, destination), 'b', '1');
  await client.xadd(stream, '*', 'e', '');
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const variant of [...variants, { name: 'route.lua as a Redis Function (FCALL)', lua: '', keys: routeKeys, args: routeArgs }]) {
      const asFunction = variant.lua === '';
      const sha = asFunction ? '' : ((await client.script('LOAD', variant.lua)) as string);
      if (asFunction) await client.call('FUNCTION', 'LOAD', 'REPLACE', routeFunction);
      await client.config('RESETSTAT');
      for (let i = 0; i < calls; i++) {
        if (asFunction) await client.call('FCALL', 'sb_paced_route', variant.keys.length, ...variant.keys, ...variant.args);
        else await client.evalsha(sha, variant.keys.length, ...variant.keys, ...variant.args);
        // The reader's trims, roughly: the stream stays short.
        if (i % 500 === 499) await client.xtrim(stream, 'MAXLEN', 10);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const stats = (await client.info('commandstats')).split('\r\n').filter((line) => line.startsWith('cmdstat_'));
      const perCall = (command: string) => Number(/usec_per_call=([0-9.]+)/.exec(stats.find((line) => line.startsWith(`cmdstat_${command}:`)) ?? '')?.[1] ?? NaN);
      console.log(`round ${round}  ${perCall(asFunction ? 'fcall' : 'evalsha').toFixed(2).padStart(7)} µs a call  ${variant.name}`);
      if (variant.lua === route.lua) {
        const nested = stats
          .map((line) => /^cmdstat_([^:]+):calls=(\d+),usec=\d+,usec_per_call=([0-9.]+)/.exec(line))
          .filter((m): m is RegExpExecArray => m !== null && !['evalsha', 'config|resetstat', 'xtrim', 'script|load'].includes(m[1]!))
          .map((m) => `${m[1]} ${(Number(m[2]) / calls).toFixed(0)}× ${m[3]}`);
        console.log(`           nested, calls a call and µs each: ${nested.join(', ')}`);
      }
    }
  }
} finally {
  client.disconnect();
  await redis.stop();
}

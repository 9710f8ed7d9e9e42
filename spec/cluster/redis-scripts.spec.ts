/*
 * The Lua library and the key schema: every script has its header and
 * compiles on a real Redis; no script spells a prefix or a hash tag (a key
 * is either declared or a `sibling` of a declared one, so it is in that
 * key's slot); the Lua constants and `sibling` agree with the TypeScript
 * ones; and what must be atomic shares a slot. The contract suites run on a
 * real Redis Cluster show the rest: Redis 7 refuses a script touching a key
 * outside its declared slot.
 */
import { expect } from 'chai';
import calculateSlot from 'cluster-key-slot';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { claimUser, RedisKeys } from '../../lib/cluster/redis-keys.js';
import { libFor, libParts, LUA_DIR, scriptLibrary } from '../../lib/cluster/redis-scripts.js';
import { REFUSED_RELAY_FULL } from '../../lib/cluster/redis-user-router.js';
import { INBOX_REFUSED } from '../../lib/inbox/redis-inbox-store.js';
import { useRedisServer } from '../helpers/redis-server.js';

describe('Redis scripts and key schema', () => {
  const redis = useRedisServer();
  const lib = readFileSync(join(LUA_DIR, 'lib.lua'), 'utf8');

  it('has a header on every script, and every script compiles', async () => {
    const scripts = scriptLibrary();
    expect(scripts.size).to.be.above(25);
    for (const [name, definition] of scripts) {
      const sha = await redis.admin.script('LOAD', definition.lua).catch((error: unknown) => {
        throw new Error(`${name}.lua does not compile: ${String(error)}`);
      });
      expect(sha, name).to.match(/^[0-9a-f]{40}$/);
    }
  });

  it('spells no prefix or hash tag in any script: keys come from KEYS or sibling()', () => {
    for (const [name, definition] of scriptLibrary()) {
      expect(definition.lua, name).to.match(definition.readOnly ? /^#!lua flags=no-writes\n/ : /^#!lua\n/);
      const own = definition.own;
      expect(definition.lua.endsWith(own), name).to.equal(true);
      // Braces in a string literal are a tag being spelled; 'sb:' a prefix.
      expect(own, name).not.to.match(/['"][^'"\n]*[{}][^'"\n]*['"]/);
      expect(own, name).not.to.match(/['"]sb:/);
      // No call reaches a key through ARGV: every redis.call's first key argument is KEYS[...], a local, or sibling().
      for (const call of own.matchAll(/redis\.call\('(\w+)',\s*ARGV\[/g)) {
        // PUBLISH/SPUBLISH take a channel, not a key: the channel is in the queue's slot (its name says so).
        expect(['PUBLISH', 'SPUBLISH'], `${name}: ${call[0]}`).to.include(call[1]!.toUpperCase());
      }
    }
  });

  it('cuts lib.lua at its top-level definitions, each part whole', async () => {
    const parts = libParts(lib);
    expect(parts.map((part) => part.name)).to.deep.equal([...lib.matchAll(/^local (?:function )?(\w+)/gm)].map((m) => m[1]));
    // Every part together is lib.lua without its header: it compiles and defines each name.
    const all = parts.map((part) => part.text).join('\n');
    const names = parts.map((part) => part.name);
    const kinds = (await redis.admin.eval(`${all}\nreturn { ${names.map((n) => `type(${n})`).join(', ')} }`, 0)) as string[];
    expect(kinds.filter((kind) => kind === 'nil')).to.deep.equal([]);
  });

  it('puts in front of each script the lib.lua parts it uses, with what those use, and no other', () => {
    const defined = (script: string) => [...scriptLibrary().get(script)!.lua.matchAll(/^local (?:function )?(\w+)/gm)].map((m) => m[1]);
    // route.lua calls append (which uses fits, cap, settle, …) and relay_append (which uses sibling); never take or release.
    const route = defined('route');
    expect(route).to.include.members(['append', 'fits', 'cap', 'settle', 'add_bytes', 'relay_append', 'sibling', 'RELAY_FULL']);
    expect(route).not.to.include.members(['take']);
    expect(route).not.to.include('release');
    expect(route).not.to.include('forget');
    expect(defined('relay-handoff').slice(0, 3)).to.deep.equal(['RELAY_FULL', 'sibling', 'relay_append']);
    expect(defined('relay-handoff')).not.to.include('append');
    // A name in a comment brings nothing; one in code does, and before the script's own locals.
    expect(libFor('-- append, take\nreturn 1', lib)).to.equal('');
    expect(libFor('return now()', lib)).to.match(/^(-- .*\n)*local function now\(\)/);
  });

  it('keeps the Lua constants equal to the TypeScript ones', async () => {
    const [inboxRefused, relayFull] = (await redis.admin.eval(`${lib}\nreturn { INBOX_REFUSED, RELAY_FULL }`, 0)) as number[];
    expect(inboxRefused).to.equal(INBOX_REFUSED);
    expect(relayFull).to.equal(REFUSED_RELAY_FULL);
  });

  it('derives with sibling() exactly the keys redis-keys.ts spells, whatever the names hold', async () => {
    const keys = new RedisKeys('sb:');
    for (const user of ['alice', 'a}b', 'x{y}z', '%7D', 'ü}}']) {
      const derived = await redis.admin.eval(`${lib}\nreturn sibling(KEYS[1], ARGV[1])`, 1, keys.inboxes(user), 'inbox:/queue/r');
      expect(derived, user).to.equal(keys.inbox(user, '/queue/r'));
    }
  });

  it('puts what one script changes atomically in one slot', () => {
    const keys = new RedisKeys('sb:');
    const sameSlot = (...names: string[]) => expect(new Set(names.map((n) => calculateSlot(n))).size, names.join(' ')).to.equal(1);
    for (const user of ['alice', 'a}b', 'bob%']) {
      const claimId = `node-a:${user}:s1:sub-0`;
      expect(claimUser(claimId)).to.equal(user);
      sameSlot(keys.subs(user, '/queue/r'), keys.inbox(user, '/queue/r'), keys.inboxes(user), keys.userNodes(user), keys.known(user), keys.claim(claimId), keys.claimOrder(claimId), keys.claimMeta(claimId));
    }
    sameSlot(keys.node('n1'), keys.incarnation('n1'), keys.incarnationSeq('n1'), keys.reap('n1'), keys.stream('n1'), keys.stream('n1!3'), keys.streamBytes('n1!3'), keys.streamLast('n1!3'), keys.nodeIndex('n1!3'), keys.nodeClaims('n1'), keys.nodeQueues('n1!3'));
    sameSlot(keys.queue('jobs'), keys.queueInflight('n1!3', 'jobs'), keys.queueReady('jobs'));
    sameSlot(keys.nodes(), keys.online(), keys.deadNodes(), keys.recoverLock('n1!3'), keys.deadLetter(), keys.claimDeadlines());
    // Users, nodes and queues spread: many names, many slots.
    const slots = new Set(Array.from({ length: 200 }, (_, i) => calculateSlot(keys.inbox(`user-${i}`, '/queue/r'))));
    expect(slots.size).to.be.above(190);
  });

  it('refuses a prefix that would break a hash tag', () => {
    expect(() => new RedisKeys('sb{x}:')).to.throw(/neither/);
  });
});

/*
 * The multi-server Redis helpers themselves: what the backend matrix and the
 * chaos scenarios rely on. (Kills, restarts and Sentinel failovers are
 * exercised by spec/cluster/redis-connection.spec.ts.)
 */
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { replicationOf } from './redis-admin.js';
import { useRedisCluster } from './redis-cluster.js';
import { useRedisSentinel } from './redis-sentinel.js';

describe('spec helper: a private Redis Cluster', function () {
  this.timeout(40_000);
  const suite = useRedisCluster();

  it('has 3 masters with one live replica each, every slot served; counts each master\'s commands; FLUSHALL empties them all', async () => {
    const { cluster } = suite;
    const masters = await cluster.masters();
    expect(masters).to.have.length(3);
    const replicas = cluster.servers.map((s) => s.port).filter((port) => !masters.includes(port));
    for (const port of replicas) {
      const admin = new Redis(port, { lazyConnect: true });
      try {
        const replication = await replicationOf(admin);
        expect(replication.linkUp).to.equal(true);
        expect(masters).to.include(replication.masterPort);
      } finally {
        admin.disconnect();
      }
    }
    const before = await cluster.masterStats();
    const client = new Cluster(cluster.target.nodes.map((n) => ({ ...n })));
    try {
      for (let i = 0; i < 60; i++) await client.set(`key${i}`, 'v');
      const after = await cluster.masterStats();
      const sets = after.map((stats, i) => (stats.calls['set'] ?? 0) - (before[i]!.calls['set'] ?? 0));
      expect(sets.reduce((a, b) => a + b, 0)).to.equal(60);
      expect(sets.every((count) => count > 0)).to.equal(true);
      expect(after.every((stats, i) => stats.cpuUs >= before[i]!.cpuUs)).to.equal(true);
      await cluster.flushAll();
      for (let i = 0; i < 60; i++) expect(await client.get(`key${i}`)).to.equal(null);
    } finally {
      client.disconnect();
    }
  });

  it('CLUSTER FAILOVER: the replica takes over its master\'s slots and the master becomes its replica', async () => {
    const { cluster } = suite;
    const { demoted, promoted } = await cluster.failover();
    const masters = await cluster.masters();
    expect(masters).to.include(promoted);
    expect(masters).not.to.include(demoted);
    const admin = new Redis(demoted, { lazyConnect: true });
    try {
      expect(await replicationOf(admin)).to.deep.equal({ role: 'slave', masterPort: promoted, linkUp: true });
    } finally {
      admin.disconnect();
    }
  });
});

describe('spec helper: a private Sentinel setup', function () {
  this.timeout(40_000);
  const suite = useRedisSentinel();

  it('has a primary and its replica, named by every sentinel', async () => {
    const { sentinel } = suite;
    expect(sentinel.sentinelPorts).to.have.length(3);
    for (const port of sentinel.sentinelPorts) {
      const admin = new Redis(port, { lazyConnect: true });
      try {
        expect(await admin.call('SENTINEL', 'get-master-addr-by-name', sentinel.target.name)).to.deep.equal(['127.0.0.1', String(sentinel.primary.port)]);
      } finally {
        admin.disconnect();
      }
    }
    const admin = new Redis(sentinel.replica.port, { lazyConnect: true });
    try {
      expect(await replicationOf(admin)).to.deep.equal({ role: 'slave', masterPort: sentinel.primary.port, linkUp: true });
    } finally {
      admin.disconnect();
    }
  });
});

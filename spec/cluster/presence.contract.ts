/*
 * The PresenceRegistry contract: every backend runs this suite (the memory
 * and the Redis spec files), so that the broker can rely on one behaviour.
 */
import { expect } from 'chai';
import type { PresenceRegistry } from '../../lib/cluster/presence.js';
import { eventually } from './support.js';

/** Nodes sharing one cluster. */
export interface PresenceCluster {
  /** A started node of the cluster. */
  node(id: string): Promise<PresenceRegistry>;
  /** Closes the nodes still open and whatever the cluster holds. */
  close(): Promise<void>;
}

export function presenceContract(name: string, createCluster: () => Promise<PresenceCluster>): void {
  describe(`${name}: PresenceRegistry contract`, () => {
    let cluster: PresenceCluster;
    let a: PresenceRegistry;
    let b: PresenceRegistry;

    beforeEach(async () => {
      cluster = await createCluster();
      a = await cluster.node('node-a');
      b = await cluster.node('node-b');
    });

    afterEach(async () => {
      await cluster.close();
    });

    it('shows a user online on one node to every node', async () => {
      await b.userOnline('alice');
      for (const view of [a, b]) {
        expect(await view.nodesOf('alice')).to.deep.equal(['node-b']);
        expect(await view.isOnline('alice')).to.equal(true);
        expect(await view.onlineCount()).to.equal(1);
        expect(await view.onlineUsers()).to.deep.equal(['alice']);
      }
      expect(await a.isOnline('bob')).to.equal(false);
      expect(await a.nodesOf('bob')).to.deep.equal([]);
    });

    it('counts a user on two nodes once and keeps them online until the last node lets go', async () => {
      await a.userOnline('alice');
      await b.userOnline('alice');
      expect(await a.nodesOf('alice')).to.deep.equal(['node-a', 'node-b']);
      expect(await a.onlineCount()).to.equal(1);

      await a.userOffline('alice');
      expect(await b.nodesOf('alice')).to.deep.equal(['node-b']);
      expect(await b.isOnline('alice')).to.equal(true);

      await b.userOffline('alice');
      expect(await a.isOnline('alice')).to.equal(false);
      expect(await a.onlineCount()).to.equal(0);
      expect(await a.onlineUsers()).to.deep.equal([]);
    });

    it('treats a repeated transition as one', async () => {
      await a.userOnline('alice');
      await a.userOnline('alice');
      expect(await b.onlineCount()).to.equal(1);
      await a.userOffline('alice');
      expect(await b.isOnline('alice')).to.equal(false);
      await a.userOffline('alice');
      expect(await b.onlineCount()).to.equal(0);
    });

    it('finds the nodes holding a subscription of a user to a destination', async () => {
      await a.subscribed('alice', '/queue/reply');
      await b.subscribed('alice', '/queue/reply');
      await b.subscribed('alice', '/queue/other');
      expect(await a.nodesFor('alice', '/queue/reply')).to.deep.equal(['node-a', 'node-b']);
      expect(await a.nodesFor('alice', '/queue/other')).to.deep.equal(['node-b']);
      expect(await a.nodesFor('bob', '/queue/reply')).to.deep.equal([]);

      await a.unsubscribed('alice', '/queue/reply');
      expect(await b.nodesFor('alice', '/queue/reply')).to.deep.equal(['node-b']);
      await b.unsubscribed('alice', '/queue/reply');
      expect(await a.nodesFor('alice', '/queue/reply')).to.deep.equal([]);
      expect(await a.nodesFor('alice', '/queue/other')).to.deep.equal(['node-b']);
    });

    it('keeps users and destinations apart whatever characters they hold', async () => {
      await a.subscribed('a:b', '/queue/c');
      await b.subscribed('a', '/queue/b:/queue/c');
      await b.userOnline('名前 with space');
      expect(await a.nodesFor('a:b', '/queue/c')).to.deep.equal(['node-a']);
      expect(await a.nodesFor('a', '/queue/b:/queue/c')).to.deep.equal(['node-b']);
      expect(await a.nodesOf('名前 with space')).to.deep.equal(['node-b']);
    });

    it('lists online users sorted, up to a limit', async () => {
      for (const user of ['carol', 'alice', 'bob']) await a.userOnline(user);
      expect(await b.onlineUsers()).to.deep.equal(['alice', 'bob', 'carol']);
      const two = await b.onlineUsers(2);
      expect(two).to.have.length(2);
      expect([...two].sort()).to.deep.equal(two);
      for (const user of two) expect(['alice', 'bob', 'carol']).to.include(user);
    });

    it('lists live nodes with the stats they publish', async () => {
      a.setStats({ connections: 3, sessions: 2, url: 'http://127.0.0.1:9000' });
      const nodes = await eventually(async () => {
        const live = await b.liveNodes();
        expect(live.map((n) => n.id)).to.deep.equal(['node-a', 'node-b']);
        expect(live[0]).to.include({ connections: 3, sessions: 2, url: 'http://127.0.0.1:9000' });
        return live;
      });
      for (const node of nodes) {
        expect(node.startedAt).to.be.a('number').that.is.at.most(Date.now());
        expect(node.lastBeat).to.be.a('number').that.is.at.least(node.startedAt);
      }
    });

    it('forgets a node and all it held when it closes', async () => {
      await b.userOnline('alice');
      await b.subscribed('alice', '/queue/reply');
      await a.userOnline('bob');
      await b.close();

      expect(await a.nodesOf('alice')).to.deep.equal([]);
      expect(await a.nodesFor('alice', '/queue/reply')).to.deep.equal([]);
      expect(await a.isOnline('alice')).to.equal(false);
      expect(await a.onlineCount()).to.equal(1);
      expect((await a.liveNodes()).map((n) => n.id)).to.deep.equal(['node-a']);
    });
  });
}

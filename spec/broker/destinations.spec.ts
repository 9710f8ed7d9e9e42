/*
 * Destination names (Spring's conventions): /topic, /queue, /app and the
 * two forms of user destinations.
 */
import { expect } from 'chai';
import { DestinationParser } from '../../lib/broker/destinations.js';
import { BrokerError } from '../../lib/core/errors.js';
import { DEFAULT_CONFIG } from '../../lib/config.js';

const parser = new DestinationParser(DEFAULT_CONFIG);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(BrokerError);
    return (error as BrokerError).code;
  }
  throw new Error('expected a BrokerError');
}

describe('DestinationParser', () => {
  describe('SEND', () => {
    it('parses /topic/... and /queue/...', () => {
      expect(parser.forSend('/topic/news')).to.deep.equal({ kind: 'topic', name: '/topic/news' });
      expect(parser.forSend('/queue/jobs/a')).to.deep.equal({ kind: 'queue', name: '/queue/jobs/a' });
    });

    it('parses the send form of user destinations: /user/{name}/queue/x and /user/{name}/topic/x', () => {
      expect(parser.forSend('/user/bob/queue/reply')).to.deep.equal({ kind: 'user', user: 'bob', target: '/queue/reply' });
      expect(parser.forSend('/user/bob/topic/reply')).to.deep.equal({ kind: 'user', user: 'bob', target: '/topic/reply' });
    });

    it('URL-decodes the user name, so names may hold "/", "%" and non-ASCII', () => {
      expect(parser.forSend('/user/a%2Fb/queue/x')).to.deep.include({ user: 'a/b', target: '/queue/x' });
      expect(parser.forSend('/user/50%25off/queue/x')).to.deep.include({ user: '50%off' });
      expect(parser.forSend(`/user/${encodeURIComponent('josé李')}/queue/x`)).to.deep.include({ user: 'josé李' });
    });

    it('refuses a user name no one can log in with (as validUserName): ":", whitespace, control characters', () => {
      for (const name of ['a%3Ab', 'jos%C3%A9%20x', 'a%00', 'a%0D%0Ab']) expect(codeOf(() => parser.forSend(`/user/${name}/queue/x`)), name).to.equal('ERR_UNKNOWN_DESTINATION');
    });

    it('refuses a malformed user name encoding', () => {
      expect(codeOf(() => parser.forSend('/user/%E0%A4%A/queue/x'))).to.equal('ERR_UNKNOWN_DESTINATION');
    });

    it('refuses user destinations naming no user or no broker destination', () => {
      expect(codeOf(() => parser.forSend('/user/bob'))).to.equal('ERR_UNKNOWN_DESTINATION');
      expect(codeOf(() => parser.forSend('/user//queue/x'))).to.equal('ERR_UNKNOWN_DESTINATION');
      expect(codeOf(() => parser.forSend('/user/bob/elsewhere/x'))).to.equal('ERR_UNKNOWN_DESTINATION');
      expect(codeOf(() => parser.forSend('/user/bob/queue/'))).to.equal('ERR_UNKNOWN_DESTINATION');
    });

    it('parses application destinations', () => {
      expect(parser.forSend('/app/chat')).to.deep.equal({ kind: 'app', name: '/app/chat' });
    });

    it('refuses an unknown prefix, a bare prefix, and invalid or missing names', () => {
      expect(codeOf(() => parser.forSend('/exchange/x'))).to.equal('ERR_UNKNOWN_DESTINATION');
      expect(codeOf(() => parser.forSend('/topic/'))).to.equal('ERR_UNKNOWN_DESTINATION');
      expect(codeOf(() => parser.forSend('topic/x'))).to.equal('ERR_INVALID_HEADER');
      expect(codeOf(() => parser.forSend(''))).to.equal('ERR_INVALID_HEADER');
      expect(codeOf(() => parser.forSend('/topic/' + 'x'.repeat(2000)))).to.equal('ERR_INVALID_HEADER');
      expect(codeOf(() => parser.forSend(undefined))).to.equal('ERR_MISSING_HEADER');
    });
  });

  describe('SUBSCRIBE', () => {
    it('reads /user/queue/x as the session user\'s own destination', () => {
      expect(parser.forSubscribe('/user/queue/reply', 'alice')).to.deep.equal({ kind: 'user', user: 'alice', target: '/queue/reply' });
      expect(parser.forSubscribe('/user/topic/reply', 'alice')).to.deep.equal({ kind: 'user', user: 'alice', target: '/topic/reply' });
    });

    it('accepts the explicit form for oneself, encoded or not', () => {
      expect(parser.forSubscribe('/user/alice/queue/x', 'alice')).to.deep.equal({ kind: 'user', user: 'alice', target: '/queue/x' });
      expect(parser.forSubscribe('/user/a%2Fb/queue/x', 'a/b')).to.deep.equal({ kind: 'user', user: 'a/b', target: '/queue/x' });
    });

    it("forbids subscribing to another user's destination", () => {
      expect(codeOf(() => parser.forSubscribe('/user/bob/queue/x', 'alice'))).to.equal('ERR_FORBIDDEN');
      expect(codeOf(() => parser.forSubscribe('/user/bob/topic/x', 'alice'))).to.equal('ERR_FORBIDDEN');
      // decoding cannot be used to pass as someone else
      expect(codeOf(() => parser.forSubscribe('/user/%61lice/queue/x', 'mallory'))).to.equal('ERR_FORBIDDEN');
    });

    it('parses broker destinations as for SEND', () => {
      expect(parser.forSubscribe('/topic/a', 'alice')).to.deep.equal({ kind: 'topic', name: '/topic/a' });
      expect(parser.forSubscribe('/queue/a', 'alice')).to.deep.equal({ kind: 'queue', name: '/queue/a' });
      expect(codeOf(() => parser.forSubscribe('/nowhere', 'alice'))).to.equal('ERR_UNKNOWN_DESTINATION');
    });
  });

  describe('prefixes', () => {
    it('are configurable', () => {
      const custom = new DestinationParser({ topicPrefix: '/t/', queuePrefix: '/q/', userPrefix: '/u/', appPrefix: '/a/' });
      expect(custom.forSend('/t/x')).to.deep.equal({ kind: 'topic', name: '/t/x' });
      expect(custom.forSend('/q/x')).to.deep.equal({ kind: 'queue', name: '/q/x' });
      expect(custom.forSend('/u/bob/q/x')).to.deep.equal({ kind: 'user', user: 'bob', target: '/q/x' });
      expect(custom.forSubscribe('/u/q/x', 'bob')).to.deep.equal({ kind: 'user', user: 'bob', target: '/q/x' });
      expect(custom.forSend('/a/x')).to.deep.equal({ kind: 'app', name: '/a/x' });
      expect(codeOf(() => custom.forSend('/topic/x'))).to.equal('ERR_UNKNOWN_DESTINATION');
    });

    it('give the subscribe form of a user target', () => {
      expect(parser.subscribeForm('/queue/reply')).to.equal('/user/queue/reply');
    });
  });
});

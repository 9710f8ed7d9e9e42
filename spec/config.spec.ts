import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ConfigError, configTable, DEFAULT_CONFIG, loadConfig, MAX_INBOX_CLAIM_TIMEOUT_MS, OPTIONS, redisTargetOf } from '../lib/config.js';

describe('config', () => {
  it('the README documents every option with its default (regenerate: npx tsx scripts/config-table.ts)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).to.include(configTable());
  });

  it('the README lists every bound (*MAX_*, SEND_RATE_*) in its "Limits and permissions" section', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Limits and permissions'), readme.indexOf('## Speed'));
    const bounds = Object.values(OPTIONS).map((o) => o.env)
      // Intervals (HEARTBEAT_MAX_MS) are not resources a client takes.
      .filter((env) => /(^|_)MAX_|^SEND_RATE_/.test(env) && !env.endsWith('_MS'));
    expect(bounds).to.include.members(['INBOX_MAX_BYTES', 'QUEUE_MAX_BYTES', 'RELAY_MAX_STREAM_BYTES']);
    expect(bounds.filter((env) => !section.includes(`\`${env}\``))).to.deep.equal([]);
  });

  it('reads environment variables over the defaults, and flags over both', () => {
    const config = loadConfig({ PORT: '9000', REDIS_URL: 'redis://127.0.0.1:7000', AUTH_MODE: 'static' }, ['--port', '9100']);
    expect(config.port).to.equal(9100);
    expect(config.redisUrl).to.equal('redis://127.0.0.1:7000');
    expect(config.authMode).to.equal('static');
    expect(config.maxBodySize).to.equal(DEFAULT_CONFIG.maxBodySize);
  });

  it('turns booleans off with --no-<flag> or an env value of false', () => {
    expect(DEFAULT_CONFIG.wsCoalesceFrames).to.equal(true);
    expect(loadConfig({}, ['--no-ws-coalesce-frames']).wsCoalesceFrames).to.equal(false);
    expect(loadConfig({ WS_COALESCE_FRAMES: 'false' }).wsCoalesceFrames).to.equal(false);
  });

  it('a full inbox refuses new messages unless told to drop the oldest; claims time out after 30 s, one hour at most', () => {
    expect(DEFAULT_CONFIG.inboxOverflow).to.equal('refuse');
    expect(loadConfig({ INBOX_OVERFLOW: 'drop-oldest' }).inboxOverflow).to.equal('drop-oldest');
    expect(DEFAULT_CONFIG.inboxClaimTimeoutMs).to.equal(30_000);
    expect(loadConfig({}, ['--inbox-claim-timeout-ms', String(MAX_INBOX_CLAIM_TIMEOUT_MS)]).inboxClaimTimeoutMs).to.equal(MAX_INBOX_CLAIM_TIMEOUT_MS);
  });

  it('reaches one Redis, a Redis Cluster or a primary through Sentinel, whichever one option is set; none: in memory', () => {
    expect(redisTargetOf(loadConfig({}))).to.equal(undefined);
    expect(redisTargetOf(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }))).to.equal('redis://127.0.0.1:6379');
    expect(redisTargetOf(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001,[::1]:7002' }))).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(redisTargetOf(loadConfig({}, ['--redis-sentinels', 'localhost:26379', '--redis-sentinel-name', 'main']))).to.deep.equal({
      kind: 'sentinel',
      sentinels: [{ host: 'localhost', port: 26379 }],
      name: 'main',
    });
  });

  it('refuses two ways to Redis at once, a malformed seed list, and sentinels without a name', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).to.throw(ConfigError, /one of REDIS_URL.*not REDIS_URL and REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }, ['--redis-sentinels', 'h:1', '--redis-sentinel-name', 'm'])).to.throw(ConfigError, /REDIS_CLUSTER_NODES and REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1' })).to.throw(ConfigError, /REDIS_CLUSTER_NODES.*host:port, got "127.0.0.1"/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:70000' })).to.throw(ConfigError, /REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379' })).to.throw(ConfigError, /REDIS_SENTINEL_NAME/);
    expect(() => loadConfig({ REDIS_SENTINEL_NAME: 'main' })).to.throw(ConfigError, /REDIS_SENTINELS/);
  });

  it('refuses malformed values with a message naming the option', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).to.throw(ConfigError, /PORT/);
    expect(() => loadConfig({ AUTH_MODE: 'maybe' })).to.throw(ConfigError, /AUTH_MODE/);
    expect(() => loadConfig({ INBOX_OVERFLOW: 'drop-newest' })).to.throw(ConfigError, /INBOX_OVERFLOW/);
    expect(() => loadConfig({}, ['--inbox-claim-timeout-ms', String(MAX_INBOX_CLAIM_TIMEOUT_MS + 1)])).to.throw(ConfigError, /INBOX_CLAIM_TIMEOUT_MS.*at most/);
    expect(() => loadConfig({}, ['--no-such-flag'])).to.throw(TypeError);
  });
});

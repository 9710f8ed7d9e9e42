import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ConfigError, configTable, DEFAULT_CONFIG, loadConfig, MAX_INBOX_CLAIM_TIMEOUT_MS, OPTIONS } from '../lib/config.js';

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

  it('refuses malformed values with a message naming the option', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).to.throw(ConfigError, /PORT/);
    expect(() => loadConfig({ AUTH_MODE: 'maybe' })).to.throw(ConfigError, /AUTH_MODE/);
    expect(() => loadConfig({ INBOX_OVERFLOW: 'drop-newest' })).to.throw(ConfigError, /INBOX_OVERFLOW/);
    expect(() => loadConfig({}, ['--inbox-claim-timeout-ms', String(MAX_INBOX_CLAIM_TIMEOUT_MS + 1)])).to.throw(ConfigError, /INBOX_CLAIM_TIMEOUT_MS.*at most/);
    expect(() => loadConfig({}, ['--no-such-flag'])).to.throw(TypeError);
  });
});

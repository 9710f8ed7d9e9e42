/*
 * Attack: consume or publish where one has no business (issue 10: any user
 * could consume any /queue/* or /topic/*). With PERMISSIONS_FILE rules, and
 * in jwt mode patterns carried by a claim (PERMISSIONS_CLAIM), what no rule
 * grants is ERROR ERR_FORBIDDEN on STOMP and 403 on the HTTP API, counted
 * in /metrics (stompbox_forbidden_total); a good pair the rules allow loses
 * nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { SignJWT, type JWTPayload } from 'jose';
import { Permissions, type PermissionRule } from '../../lib/broker/permissions.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { RawStompClient } from '../helpers/stomp-client.js';
import { call, errorCode, login } from '../http/helpers.js';
import { GoodPair } from './support.js';

const SECRET = 'spec-session-secret-0123456789abcdef';
const JWT_SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';

const RULES: { rules: PermissionRule[] } = {
  rules: [
    { users: ['*'], subscribe: ['/user/{self}/**', '/topic/public.*'], send: ['/user/*/queue/**', '/topic/public.*'] },
    { users: ['ops'], subscribe: ['/topic/orders.*', '/queue/jobs'], send: ['/topic/orders.*', '/queue/jobs'] },
    { claims: { role: 'worker' }, subscribe: ['/queue/jobs'] },
  ],
};

function rulesFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'stompbox-rules-')), 'rules.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

async function answer(
  node: TestNode,
  connect: Record<string, string>,
  frame: { command: string; destination: string },
  handshake: Record<string, string> = {},
): Promise<string | undefined> {
  const client = await RawStompClient.connect(node.wsUrl, connect, { headers: handshake });
  const headers: Record<string, string> = { destination: frame.destination, receipt: 'r' };
  if (frame.command === 'SUBSCRIBE') headers.id = 's';
  client.sendFrame({ command: frame.command, headers, body: frame.command === 'SEND' ? 'x' : undefined });
  const reply = await client.nextFrame();
  client.terminate();
  return reply.command === 'RECEIPT' ? 'RECEIPT' : reply.headers.code;
}

function hs256(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(Buffer.from(JWT_SECRET));
}

describe('security: per-destination permissions', () => {
  afterEach(stopTestNodes);

  it('rules by user: refusals are ERR_FORBIDDEN / 403 and counted; what the rules grant works', async () => {
    const node = await startTestNode({ sessionSecret: SECRET, permissionsFile: rulesFile(RULES) });
    const pair = await GoodPair.open(node.wsUrl);
    const mallory = { login: 'mallory' };
    expect(await answer(node, mallory, { command: 'SUBSCRIBE', destination: '/queue/jobs' })).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, mallory, { command: 'SUBSCRIBE', destination: '/topic/orders.eu' })).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, mallory, { command: 'SEND', destination: '/topic/orders.eu' })).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, mallory, { command: 'SUBSCRIBE', destination: '/user/bob/queue/good' })).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, mallory, { command: 'SUBSCRIBE', destination: '/topic/public.news' })).to.equal('RECEIPT');
    expect(await answer(node, mallory, { command: 'SEND', destination: '/user/bob/queue/hello' })).to.equal('RECEIPT');
    expect(await answer(node, { login: 'ops' }, { command: 'SUBSCRIBE', destination: '/topic/orders.eu' })).to.equal('RECEIPT');
    expect(await answer(node, { login: 'ops' }, { command: 'SEND', destination: '/queue/jobs' })).to.equal('RECEIPT');
    const { token } = await login(node, 'mallory');
    const refused = await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/topic/x', body: 'x' } });
    expect(refused.status).to.equal(403);
    expect(errorCode(refused)).to.equal('ERR_FORBIDDEN');
    expect((await call(node, 'POST', '/api/messages', { token, json: { to: 'bob', destination: '/queue/x', body: 'x' } })).status).to.equal(202);
    const metrics = (await call(node, 'GET', '/metrics')).text;
    // Another user's destination is refused before the rules (destinations.ts): only errors_total (STOMP) counts it.
    expect(metrics).to.match(/stompbox_forbidden_total\{action="subscribe"[^}]*\} 2\n/);
    expect(metrics).to.match(/stompbox_forbidden_total\{action="send"[^}]*\} 2\n/);
    expect(metrics).to.match(/stompbox_errors_total\{code="ERR_FORBIDDEN"[^}]*\} 4\n/);
    await pair.exchange(3);
    expect(await pair.check()).to.deep.equal({ delivered: 3, lost: 0 });
  });

  it('jwt mode: rules by claim, and patterns carried by PERMISSIONS_CLAIM', async () => {
    const node = await startTestNode({ authMode: 'jwt', jwtSecret: JWT_SECRET, permissionsFile: rulesFile(RULES), permissionsClaim: 'stompbox' });
    const worker = { passcode: await hs256({ sub: 'wendy', role: 'worker' }) };
    const carrier = { passcode: await hs256({ sub: 'carl', stompbox: { send: ['/topic/orders.*'] } }) };
    const plain = { passcode: await hs256({ sub: 'mallory', role: 'guest' }) };
    expect(await answer(node, worker, { command: 'SUBSCRIBE', destination: '/queue/jobs' })).to.equal('RECEIPT');
    expect(await answer(node, plain, { command: 'SUBSCRIBE', destination: '/queue/jobs' })).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, carrier, { command: 'SEND', destination: '/topic/orders.eu' })).to.equal('RECEIPT');
    expect(await answer(node, carrier, { command: 'SUBSCRIBE', destination: '/topic/orders.eu' })).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, plain, { command: 'SEND', destination: '/topic/orders.eu' })).to.equal('ERR_FORBIDDEN');
  });

  it('jwt mode: a session from the login cookie carries the claims the rules read, on STOMP and HTTP alike', async () => {
    const node = await startTestNode({
      authMode: 'jwt',
      jwtSecret: JWT_SECRET,
      sessionSecret: SECRET,
      // Nobody may send to a user destination unless a claim says so.
      permissionsFile: rulesFile({ rules: [{ users: ['*'], subscribe: ['/user/{self}/**'] }, { claims: { role: 'worker' }, subscribe: ['/queue/jobs'] }] }),
      permissionsClaim: 'stompbox',
    });
    // Logged in with a JWT through POST /api/login: the page's session is the cookie, CONNECT carries no token.
    const cookieOf = async (claims: JWTPayload) => ({ Cookie: (await login(node, String(claims.sub), { token: await hs256(claims) })).cookie });
    const worker = await cookieOf({ sub: 'wendy', role: 'worker', bulky: 'x'.repeat(8000) });
    const carrier = await cookieOf({ sub: 'carl', stompbox: { send: ['/topic/orders.*', '/user/*/queue/orders'] } });
    const plain = await cookieOf({ sub: 'mallory', role: 'guest' });
    expect(await answer(node, {}, { command: 'SUBSCRIBE', destination: '/queue/jobs' }, worker)).to.equal('RECEIPT');
    expect(await answer(node, {}, { command: 'SUBSCRIBE', destination: '/queue/jobs' }, plain)).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, {}, { command: 'SEND', destination: '/topic/orders.eu' }, carrier)).to.equal('RECEIPT');
    expect(await answer(node, {}, { command: 'SUBSCRIBE', destination: '/topic/orders.eu' }, carrier)).to.equal('ERR_FORBIDDEN');
    expect(await answer(node, {}, { command: 'SEND', destination: '/topic/orders.eu' }, plain)).to.equal('ERR_FORBIDDEN');
    // The HTTP API with the same cookies: the claim's pattern grants the send, and only it.
    const send = (cookie: Record<string, string>, destination: string) =>
      call(node, 'POST', '/api/messages', { headers: cookie, json: { to: 'bob', destination, body: 'x' } });
    expect((await send(carrier, '/queue/orders')).status).to.equal(202);
    expect((await send(carrier, '/queue/other')).status).to.equal(403);
    expect((await send(plain, '/queue/orders')).status).to.equal(403);
  });

  it('a malformed rules file stops the node from starting, naming the file and the fault', () => {
    expect(() => Permissions.load(rulesFile('{"rules": [{"user": ["x"]}]}'), '/user/')).to.throw(/rules\[0\] has an unknown key "user"/);
    expect(() => Permissions.load(rulesFile('not json'), '/user/')).to.throw(/not JSON/);
    expect(() => Permissions.load(rulesFile({ rules: [{ send: '/topic/a' }] }), '/user/')).to.throw(/send must be a list of strings/);
  });
});

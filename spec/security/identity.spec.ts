/*
 * Identity: JWT mode (HS256 secret, RS256 and ES256 public keys) over
 * every way a token arrives (login, Bearer, CONNECT passcode and
 * Authorization, access_token on the WebSocket URL), the signed session
 * cookie, and open mode's bind-address guard. Each refusal is asserted.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { pino } from 'pino';
import { loadConfig } from '../../lib/config.js';
import { SessionTokens } from '../../lib/identity/session-token.js';
import { createAuthenticator } from '../../lib/node.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call, errorCode, login, openWs, upgradeAnswer } from '../http/helpers.js';

const HS_SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
const SESSION_SECRET = 'spec-session-secret-0123456789abcdef';
const silent = pino({ level: 'silent' });

function hs256(claims: JWTPayload, secret = HS_SECRET, expiresIn: string | number = '5m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn).sign(Buffer.from(secret));
}

function signWith(key: KeyObject, alg: string, claims: JWTPayload, expiresIn: string | number = '5m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt().setExpirationTime(expiresIn).sign(key);
}

describe('identity', () => {
  afterEach(stopTestNodes);

  describe('JWT mode with an HS256 secret', () => {
    let node: TestNode;
    beforeEach(async () => {
      node = await startTestNode({ authMode: 'jwt', jwtSecret: HS_SECRET, sessionSecret: SESSION_SECRET });
    });

    it('logs in with {token}: the cookie names `sub` and expires no later than the token', async () => {
      const token = await hs256({ sub: 'alice' }, HS_SECRET, '2m');
      const answer = await call(node, 'POST', '/api/login', { json: { token } });
      expect(answer.status, answer.text).to.equal(200);
      expect(answer.json.user).to.equal('alice');
      expect(answer.json.expiresAt).to.be.at.most(Date.now() + 2 * 60_000 + 1000);
      const maxAge = Number(/Max-Age=(\d+)/.exec(answer.headers.get('set-cookie') ?? '')?.[1]);
      expect(maxAge).to.be.within(60, 121);
      const me = await call(node, 'GET', '/api/me', { cookie: (answer.headers.get('set-cookie') ?? '').split(';')[0] });
      expect(me.json).to.include({ user: 'alice', authMode: 'jwt' });
    });

    it('accepts the JWT as a Bearer token on the API', async () => {
      const me = await call(node, 'GET', '/api/me', { token: await hs256({ sub: 'bob' }) });
      expect(me.json).to.include({ user: 'bob', via: 'bearer' });
    });

    it('accepts the JWT as CONNECT passcode or Authorization header, and as access_token on the WebSocket URL', async () => {
      const byPasscode = await openWs(node.wsUrl);
      expect((await byPasscode.connect({ login: 'ignored', passcode: await hs256({ sub: 'carol' }) })).headers['user-name']).to.equal('carol');
      const byHeader = await openWs(node.wsUrl);
      expect((await byHeader.connect({ Authorization: `Bearer ${await hs256({ sub: 'dave' })}` })).headers['user-name']).to.equal('dave');
      const byQuery = await openWs(`${node.wsUrl}?access_token=${await hs256({ sub: 'erin' })}`);
      expect((await byQuery.connect({ login: 'mallory' })).headers['user-name']).to.equal('erin');
    });

    it('refuses a CONNECT with a login but no token', async () => {
      const ws = await openWs(node.wsUrl);
      const reply = await ws.connect({ login: 'alice', passcode: '' });
      expect(reply.command).to.equal('ERROR');
      expect(reply.headers.code).to.equal('ERR_AUTH_REQUIRED');
    });

    it('refuses expired, forged, unsigned, sub-less, exp-less and badly named tokens everywhere', async () => {
      const key = Buffer.from(HS_SECRET);
      const bad: Record<string, string> = {
        expired: await hs256({ sub: 'alice' }, HS_SECRET, Math.floor(Date.now() / 1000) - 3600),
        'wrong secret': await hs256({ sub: 'alice' }, 'another-secret-of-at-least-32-bytes!!!'),
        unsigned: new UnsecuredJWT({ sub: 'alice' }).setExpirationTime('5m').encode(),
        'no sub': await hs256({}),
        'no exp': await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(key),
        'invalid sub': await hs256({ sub: 'two words' }),
        garbage: 'a.b.c',
      };
      for (const [what, token] of Object.entries(bad)) {
        const loginAnswer = await call(node, 'POST', '/api/login', { json: { token } });
        expect(loginAnswer.status, `login, ${what}`).to.equal(401);
        expect(errorCode(loginAnswer), what).to.equal('ERR_AUTH_FAILED');
        const bearer = await call(node, 'GET', '/api/me', { token });
        expect(bearer.status, `bearer, ${what}`).to.equal(401);
        const ws = await openWs(node.wsUrl);
        const reply = await ws.connect({ passcode: token });
        expect(reply.command, `CONNECT, ${what}`).to.equal('ERROR');
        expect(reply.headers.code).to.equal('ERR_AUTH_FAILED');
        const upgrade = await upgradeAnswer(`${node.wsUrl}?access_token=${encodeURIComponent(token)}`);
        expect(upgrade.status, `access_token, ${what}`).to.equal(401);
        expect(upgrade.json.error.code).to.equal('ERR_AUTH_FAILED');
      }
    });

    it('refuses an open-mode style login (a name, no token)', async () => {
      const answer = await call(node, 'POST', '/api/login', { json: { user: 'alice' } });
      expect(answer.status).to.equal(401);
    });
  });

  describe('JWT mode with a public key', () => {
    it('RS256: accepts tokens signed by the private key, refuses HS256 tokens made with the public key', async () => {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const node = await startTestNode({ authMode: 'jwt', jwtPublicKey: pem, sessionSecret: SESSION_SECRET });
      const good = await signWith(privateKey, 'RS256', { sub: 'alice' });
      expect((await call(node, 'GET', '/api/me', { token: good })).json.user).to.equal('alice');
      // Algorithm confusion: the public key's PEM text used as an HMAC secret.
      const confused = await hs256({ sub: 'mallory' }, pem);
      expect((await call(node, 'GET', '/api/me', { token: confused })).status).to.equal(401);
      const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      expect((await call(node, 'GET', '/api/me', { token: await signWith(otherKey, 'RS256', { sub: 'mallory' }) })).status).to.equal(401);
    });

    it('ES256 from a PEM file, with issuer and audience required', async () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const dir = mkdtempSync(join(tmpdir(), 'stompbox-jwt-'));
      const file = join(dir, 'public.pem');
      writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
      const node = await startTestNode({ authMode: 'jwt', jwtPublicKey: file, jwtIssuer: 'https://idp.example', jwtAudience: 'stompbox', sessionSecret: SESSION_SECRET });
      const good = await signWith(privateKey, 'ES256', { sub: 'alice', iss: 'https://idp.example', aud: 'stompbox' });
      const ws = await openWs(node.wsUrl);
      expect((await ws.connect({ passcode: good })).headers['user-name']).to.equal('alice');
      const wrongIssuer = await signWith(privateKey, 'ES256', { sub: 'alice', iss: 'https://evil.example', aud: 'stompbox' });
      const wrongAudience = await signWith(privateKey, 'ES256', { sub: 'alice', iss: 'https://idp.example', aud: 'other' });
      for (const token of [wrongIssuer, wrongAudience]) {
        const answer = await call(node, 'POST', '/api/login', { json: { token } });
        expect(answer.status).to.equal(401);
        expect(answer.json.error.message).to.match(/claim/);
      }
    });

    it('refuses to start without a key', async () => {
      const config = loadConfig({}, [], { authMode: 'jwt' });
      expect(() => createAuthenticator(config, silent)).to.throw(/JWT_SECRET|JWT_PUBLIC_KEY/);
    });
  });

  describe('session cookie', () => {
    let node: TestNode;
    beforeEach(async () => {
      node = await startTestNode({ sessionSecret: SESSION_SECRET });
    });

    it('ignores a tampered cookie and refuses a tampered bearer token', async () => {
      const { token } = await login(node, 'alice');
      const [payload, mac] = token.split('.');
      const forgedPayload = Buffer.from(JSON.stringify({ u: 'admin', e: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url');
      for (const forged of [`${forgedPayload}.${mac}`, `${payload}.${mac!.slice(0, -2)}AA`]) {
        const byCookie = await call(node, 'GET', '/api/me', { cookie: `sb_session=${forged}` });
        expect(byCookie.status).to.equal(401);
        expect(errorCode(byCookie)).to.equal('ERR_AUTH_REQUIRED');
        const byBearer = await call(node, 'GET', '/api/me', { token: forged });
        expect(errorCode(byBearer)).to.equal('ERR_AUTH_FAILED');
        const upgrade = await upgradeAnswer(`${node.wsUrl}?access_token=${forged}`);
        expect(upgrade.status).to.equal(401);
      }
    });

    it('refuses an expired session', async () => {
      const expired = new SessionTokens(Buffer.from(SESSION_SECRET), 3600).issue('alice', Date.now() - 1000).token;
      expect((await call(node, 'GET', '/api/me', { cookie: `sb_session=${expired}` })).status).to.equal(401);
      expect((await call(node, 'GET', '/api/me', { token: expired })).status).to.equal(401);
    });

    it('is accepted by every node with the same SESSION_SECRET, by no other', async () => {
      const same = await startTestNode({ sessionSecret: SESSION_SECRET });
      const other = await startTestNode({ sessionSecret: 'a-different-secret-0123456789abcdef' });
      const { cookie } = await login(node, 'alice');
      expect((await call(same, 'GET', '/api/me', { cookie })).json.user).to.equal('alice');
      expect((await call(other, 'GET', '/api/me', { cookie })).status).to.equal(401);
    });

    it('identifies the WebSocket handshake by cookie; CONNECT cannot switch user', async () => {
      const { cookie } = await login(node, 'alice');
      const ws = await openWs(node.wsUrl, { Cookie: cookie });
      const reply = await ws.connect({ login: 'bob' });
      expect(reply.headers['user-name']).to.equal('alice');
    });
  });

  describe('open mode', () => {
    it('refuses a non-loopback bind unless ALLOW_OPEN_PUBLIC', () => {
      expect(() => createAuthenticator(loadConfig({}, [], { host: '0.0.0.0' }), silent)).to.throw(/ALLOW_OPEN_PUBLIC/);
      expect(createAuthenticator(loadConfig({}, [], { host: '0.0.0.0', allowOpenPublic: true }), silent).mode).to.equal('open');
      expect(createAuthenticator(loadConfig({}, [], { host: '127.0.0.1' }), silent).mode).to.equal('open');
    });
  });
});

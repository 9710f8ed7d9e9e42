/*
 * GET /api/openapi.json documents every HTTP route: its paths and methods
 * are compared with the koa router's routes both ways, so the document and
 * the code cannot drift; and the README lists the same routes.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { createRouter } from '../../lib/http/app.js';
import { IdentityResolver } from '../../lib/identity/identity.js';
import { OriginPolicy } from '../../lib/identity/origin-policy.js';
import { SessionTokens } from '../../lib/identity/session-token.js';
import { startTestNode, stopTestNodes, type TestNode } from '../helpers/node.js';
import { call } from './helpers.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** `METHOD /path` for every operation of the document, `{param}` written as koa's `:param`. */
function documented(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((method) => METHODS.includes(method))
      .map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
  );
}

/** `METHOD /path` for every route of the router; HEAD is koa's automatic twin of GET. */
function routed(node: TestNode): string[] {
  const router = createRouter({
    broker: node.broker,
    log: node.log,
    metrics: node.metrics,
    identity: new IdentityResolver(new SessionTokens(Buffer.alloc(32), 60), undefined),
    origins: new OriginPolicy(undefined),
  });
  return router.stack.flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${String(layer.path)}`));
}

describe('OpenAPI document (GET /api/openapi.json)', () => {
  let node: TestNode;
  let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };

  before(async () => {
    node = await startTestNode();
    const answer = await call(node, 'GET', '/api/openapi.json');
    expect(answer.status).to.equal(200);
    doc = answer.json;
  });
  after(stopTestNodes);

  it('is an OpenAPI 3.1 document', () => {
    expect(doc.openapi).to.equal('3.1.0');
  });

  it('documents every route of the router', () => {
    const missing = routed(node).filter((route) => !documented(doc).includes(route));
    expect(missing, 'routes missing from lib/http/openapi.ts').to.deep.equal([]);
  });

  it('documents no route the router does not have', () => {
    const extra = documented(doc).filter((route) => !routed(node).includes(route));
    expect(extra, 'documented routes that do not exist').to.deep.equal([]);
  });

  it('every operation says how it fails, with the stable error codes', () => {
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item) as Array<{ responses: Record<string, unknown> }>) expect(op.responses).to.have.property('4XX');
    }
    const codes = (doc as unknown as { components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } } } })
      .components.schemas.Error.properties.error.properties.code.enum;
    expect(codes).to.include.members(['ERR_BAD_REQUEST', 'ERR_APP_TIMEOUT']);
  });

  it('the README lists the same routes', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const route of documented(doc)) expect(readme, `README lists ${route}`).to.include(`\`${route.replace(/:(\w+)/g, '{$1}')}\``);
  });
});

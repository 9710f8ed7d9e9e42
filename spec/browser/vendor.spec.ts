import { expect } from 'chai';
import Koa from 'koa';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VENDOR_FILES, vendorMiddleware } from '../../lib/http/vendor.js';

describe('vendor route (client libraries from node_modules)', () => {
  let server: Server;
  let base: string;

  before(async () => {
    const app = new Koa();
    app.use(vendorMiddleware());
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = 'not found';
    });
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  for (const name of Object.keys(VENDOR_FILES).filter((n) => n.endsWith('.js'))) {
    it(`serves /vendor/${name} as JavaScript`, async () => {
      const response = await fetch(`${base}/vendor/${name}`);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^text\/javascript/);
      expect((await response.text()).length).to.be.greaterThan(1000);
    });
  }

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await fetch(`${base}/vendor/sockjs-client/sockjs.min.js`);
    const etag = first.headers.get('etag');
    expect(etag).to.be.a('string');
    const second = await fetch(`${base}/vendor/sockjs-client/sockjs.min.js`, { headers: { 'If-None-Match': etag! } });
    expect(second.status).to.equal(304);
  });

  it('exposes nothing else under node_modules', async () => {
    for (const path of ['/vendor/stompjs/package.json', '/vendor/../package.json', '/vendor/ws/index.js', '/vendor/']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status, path).to.equal(404);
    }
  });

  it('serves HEAD but not POST', async () => {
    expect((await fetch(`${base}/vendor/stompjs/stomp.umd.min.js`, { method: 'HEAD' })).status).to.equal(200);
    expect((await fetch(`${base}/vendor/stompjs/stomp.umd.min.js`, { method: 'POST' })).status).to.equal(404);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogCapture, startIflow, startIflowWithFlows, waitFor } from '../support/iflow.ts';
import Fastify from 'fastify';
import { connect } from 'node:net';
import { createLogger } from '../../src/logging/index.ts';
import { logRequests, RequestLogController } from '../../src/logging/request-log.ts';

test('admin requests are logged (incoming and completed, one request id); flow and probe requests only by their message line', async (t) => {
  const iflow = await startIflowWithFlows(t, { hello: { 'flow.yaml': 'id: hello\nsender: { path: /http/hello, method: POST, role: admin }\nsteps:\n  - set: { body: "hi" }\n' } });

  const listed = await fetch(`${iflow.url}/api/v1/users?password=hunter2-in-a-query`, { headers: { authorization: iflow.adminAuth } });
  assert.equal(listed.status, 200);
  const denied = await fetch(`${iflow.url}/api/v1/users`);
  assert.equal(denied.status, 401);
  const missing = await fetch(`${iflow.url}/api/v1/nothing-here`, { headers: { authorization: iflow.adminAuth } });
  assert.equal(missing.status, 404);
  const sent = await fetch(`${iflow.url}/http/hello`, { method: 'POST', headers: { authorization: iflow.adminAuth }, body: 'x' });
  assert.equal(sent.status, 200);
  assert.equal((await fetch(`${iflow.url}/health`)).status, 200);

  const records = await waitFor(
    () => {
      const all = iflow.logs.records();
      return all.filter((r) => r.msg === 'request completed').length >= 3 && all.some((r) => r.msg === 'message completed') ? all : undefined;
    },
    { what: 'request and message lines' },
  );
  const incoming = records.filter((r) => r.msg === 'incoming request');
  const completed = records.filter((r) => r.msg === 'request completed');
  assert.deepEqual(
    incoming.map((r) => (r.req as { method: string; url: string }).url),
    ['/api/v1/users?password=[Redacted]', '/api/v1/users', '/api/v1/nothing-here'],
    'only admin requests, their secrets redacted',
  );
  assert.deepEqual(
    completed.map((r) => (r.res as { statusCode: number }).statusCode),
    [200, 401, 404],
  );
  assert.notEqual(incoming[0].reqId, incoming[1].reqId);
  assert.deepEqual(
    completed.map((r) => r.reqId),
    incoming.map((r) => r.reqId),
    'each completed line carries its request id',
  );
  assert.equal(typeof completed[0].responseTime, 'number');
  assert.deepEqual(Object.keys(completed[0].res as object), ['statusCode'], 'the reply is logged as its status only');
  assert.equal(records.filter((r) => r.msg === 'message completed' && r.flow === 'hello').length, 1);
  assert.ok(!iflow.logs.text.includes('hunter2-in-a-query'));
});

test('an admin request whose connection drops before the reply is logged as such', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  const { port } = new URL(iflow.url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  // A body announced as 100 bytes, 10 sent: the request waits for the rest, then the client goes away.
  socket.write(`POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: ${iflow.adminAuth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":"a`);
  await waitFor(() => iflow.logs.records().some((r) => r.msg === 'incoming request'), { what: 'the incoming line' });
  socket.destroy();
  const closed = await waitFor(() => iflow.logs.records().find((r) => r.msg === 'connection closed before the reply was sent'), { what: 'the closed line' });
  const incoming = iflow.logs.records().find((r) => r.msg === 'incoming request')!;
  assert.equal(closed.reqId, incoming.reqId);
  assert.equal(closed.level, 40);
  assert.ok(!iflow.logs.records().some((r) => r.msg === 'request completed'));
});

test('logRequests: every route logs through the given logger; only the selected ones write request lines', async (t) => {
  const capture = new LogCapture();
  const logger = createLogger('info', capture);
  const app = Fastify({ logController: new RequestLogController() });
  logRequests(app, logger, (url) => url.startsWith('/api/'));
  app.get('/plain', async (request, reply) => {
    // As Fastify's own lines do (stream errors…): a reply must be logged as its status, never as the object.
    request.log.warn({ route: 'plain', res: reply }, 'from a plain route');
    return { ok: true };
  });
  app.get('/api/thing', async (request) => {
    request.log.warn({ route: 'api' }, 'from an admin route');
    return { ok: true };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  assert.equal(app.log, logger);

  assert.equal((await fetch(`${url}/plain`, { headers: { authorization: 'Bearer plain-route-token' } })).status, 200);
  assert.equal((await fetch(`${url}/api/thing`)).status, 200);
  const records = await waitFor(() => (capture.records().some((r) => r.msg === 'request completed') ? capture.records() : undefined), { what: 'request lines' });
  const reqId = records.find((r) => r.msg === 'incoming request')?.reqId;
  assert.equal(typeof reqId, 'string');
  assert.deepEqual(
    records.filter((r) => !String(r.msg).startsWith('Server listening')).map((r) => [r.msg, r.route ?? null, r.reqId ?? null]),
    [
      ['from a plain route', 'plain', null],
      ['incoming request', null, reqId],
      ['from an admin route', 'api', reqId],
      ['request completed', null, reqId],
    ],
  );
  assert.deepEqual(records.find((r) => r.route === 'plain')?.res, { statusCode: 200 });
  assert.ok(!capture.text.includes('plain-route-token'));
});

test('the logged client address is the peer unless IFLOW_TRUST_PROXY names it as a proxy', async (t) => {
  const loggedAddress = async (env: Record<string, string>) => {
    const iflow = await startIflow({ env });
    t.after(() => iflow.close());
    const listed = await fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: iflow.adminAuth, 'x-forwarded-for': '203.0.113.9' } });
    assert.equal(listed.status, 200);
    const line = await waitFor(() => iflow.logs.records().find((r) => r.msg === 'incoming request'), { what: 'the request line' });
    return (line.req as { remoteAddress: string }).remoteAddress;
  };
  assert.equal(await loggedAddress({}), '127.0.0.1', 'by default a caller cannot choose the logged address');
  assert.equal(await loggedAddress({ IFLOW_TRUST_PROXY: '10.0.0.0/8' }), '127.0.0.1', 'a peer outside the trusted ranges is not believed');
  assert.equal(await loggedAddress({ IFLOW_TRUST_PROXY: '127.0.0.1' }), '203.0.113.9', 'a trusted proxy forwards the client address');
  assert.equal(await loggedAddress({ IFLOW_TRUST_PROXY: 'loopback' }), '203.0.113.9', 'named ranges are understood');
});

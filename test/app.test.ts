import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { startIflow, waitFor } from './support/iflow.ts';
import { writeFlows } from './support/flows.ts';

test('health and readiness answer once the server is up', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  const health = await fetch(`${iflow.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'UP' });
  const ready = await fetch(`${iflow.url}/ready`);
  assert.equal(ready.status, 200);
});

test('an unknown path is a JSON 404', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  const response = await fetch(`${iflow.url}/nope`);
  assert.equal(response.status, 404);
  const body = (await response.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'NOT_FOUND');
});

/** Collects what arrives on a socket; `until(test)` waits (bounded) until the text so far passes `test`. */
function collect(socket: Socket) {
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  return { until: (done: (text: string) => boolean, what: string): Promise<string> => waitFor(() => (done(text) ? text : undefined), { timeoutMs: 10_000, what }) };
}

test('while shutting down, a message in flight finishes and requests still arriving get 503 SHUTTING_DOWN, logged', async (t) => {
  // A receiver that holds each request until the test releases it.
  const held: (() => void)[] = [];
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => held.push(() => response.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":true}')));
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.after(() => receiver.close());
  const flows = writeFlows({ slow: { 'flow.yaml': `sender: { path: /http/slow }\nsteps:\n  - http: { address: "http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in" }\n` } });
  t.after(() => flows.remove());
  const iflow = await startIflow({ flowsDir: flows.dir });
  const shutdown: { closed?: Promise<void> } = {};
  t.after(() => shutdown.closed ?? iflow.close());
  const { port } = new URL(iflow.url);

  // Requests pipelined on keep-alive connections: each arrives once the server is closing, while its connection is
  // busy with a message (an idle connection would just be closed). Node marks what is answered from then on
  // `Connection: close`, so one request per connection can still arrive.
  const post = `POST /http/slow HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${iflow.adminAuth}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
  const connections = [1, 2, 3].map(() => {
    const socket = connect(Number(port), '127.0.0.1');
    t.after(() => socket.destroy());
    return { socket, replies: collect(socket) };
  });
  for (const { socket } of connections) socket.write(post);
  await waitFor(() => held.length === 3, { what: 'the messages to reach the receiver' });

  shutdown.closed = iflow.close();
  // The listener closes after the preClose hooks: from then on the app refuses what still arrives.
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const probe = connect(Number(port), '127.0.0.1');
        probe.once('connect', () => (probe.destroy(), resolve(false)));
        probe.once('error', () => resolve(true));
      }),
    { what: 'the server to stop accepting connections' },
  );
  connections[0].socket.write(post);
  connections[1].socket.write(post.replace('/http/slow', '/api/v1/flows'));
  connections[2].socket.write('GET /ready HTTP/1.1\r\nHost: localhost\r\n\r\n');
  for (const release of held) release();

  const [refused, refusedAdmin, ready] = await Promise.all(
    connections.map(({ replies }) => replies.until((text) => (text.match(/HTTP\/1\.1 /g) ?? []).length === 2 && text.trimEnd().endsWith('}'), 'two replies')),
  );
  for (const text of [refused, refusedAdmin, ready]) assert.match(text, /^HTTP\/1\.1 202 [^]*\{"accepted":true\}HTTP/, 'the message in flight finished with the receiver’s answer');
  // A flow message and an admin request (those go through the request log's other branch) alike.
  for (const text of [refused, refusedAdmin]) {
    const reply = text.slice(text.lastIndexOf('HTTP/1.1 '));
    assert.match(reply, /^HTTP\/1\.1 503 /);
    assert.match(reply, /\r\nconnection: close\r\n/i);
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'SHUTTING_DOWN');
    assert.match(body.error.message, /shutting down: send the request again/);
  }
  assert.equal(held.length, 3, 'the refused message never reached the receiver');
  assert.match(ready.slice(ready.lastIndexOf('HTTP/1.1 ')), /^HTTP\/1\.1 503 [^]*\{"status":"STOPPING"\}$/);

  await shutdown.closed;
  const warnings = iflow.logs.records().filter((line) => line.level === 40);
  assert.deepEqual(
    warnings.map((line) => line.msg),
    ['shutting down: requests still arriving are refused with 503', 'requests still refused with 503 while shutting down'],
    'the first refusal at once, the count of the others when the app has closed',
  );
  assert.ok(['/http/slow', '/api/v1/flows'].includes(warnings[0].url as string), String(warnings[0].url));
  assert.equal(warnings[1].count, 1);
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { basicAuth, startIflow, startIflowWithFlows, waitFor, type RunningIflow } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';
import { startReceiver } from '../support/receiver.ts';

const SENDER_PASSWORD = 'sender-password-9f8e7d';
const OTHER_PASSWORD = 'other-password-1a2b3c';
const SENDER = basicAuth('sender', SENDER_PASSWORD);
const BEARER = 'Bearer eyJ-caller-token-that-must-never-be-logged';

type ErrorReply = { error: { code: string; message: string; messageId?: string; details?: { pointer: string; message: string }[] } };

describe('flow endpoints', () => {
  let iflow: RunningIflow;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let slow: Awaited<ReturnType<typeof startReceiver>>;
  let flows: ReturnType<typeof writeFlows>;

  before(async () => {
    receiver = await startReceiver((request) => {
      if (request.url.startsWith('/fail/')) {
        const status = Number(request.url.split('/')[2]);
        return { status, headers: { 'content-type': 'application/json', 'request-id': 'graph-req-1' }, body: { error: { code: 'Oops', message: 'x'.repeat(2000) } } };
      }
      return { status: 201, headers: { 'content-type': 'application/json', 'x-receiver': 'yes', 'set-cookie': 'session=1' }, body: { received: JSON.parse(request.body || 'null'), path: request.url } };
    });
    slow = await startReceiver({ hang: true });
    flows = writeFlows({
      steps: {
        'flow.yaml': `
parameters:
  RECEIVER: ${receiver.url}
sender:
  path: /http/steps
  role: Orders.send
  allowedHeaders: [X-Order, X-Correlation-ID, Cookie2]
steps:
  - name: Enrich
    script: scripts/enrich.ts
  - name: Stamp
    set:
      headers:
        X-Message: "\${messageId}"
        X-Order-Copy: "order \${header.X-Order} by \${property.customer}"
      properties:
        day: "\${date:now:yyyy-MM-dd}"
  - name: Map
    mapping: map.jsonata
  - name: Send
    http:
      address: "{{RECEIVER}}/orders/\${header.X-Order}"
      requestHeaders: [X-Order, X-Order-Copy, Authorization, Cookie]
`,
        'scripts/enrich.ts': `
import type { Message, ScriptContext } from '../../../../src/index.ts';
export default async function processData(message: Message, context: ScriptContext) {
  const body = message.getBodyAsJson<{ customer: string; items: { price: number }[] }>();
  message.setProperty('customer', body.customer);
  message.setBody({ ...body, total: body.items.reduce((sum, item) => sum + item.price, 0), flow: context.parameters.RECEIVER ? 'has-param' : 'none' });
}
`,
        'map.jsonata': '{ "customer": customer, "total": total, "flow": flow }',
      },
      schema: {
        'flow.yaml': `
sender:
  path: /http/schema
  schema: order.json
  bodyLimit: 1KB
steps:
  - set: { body: "ok \${header.Content-Type}" }
`,
        'order.json': JSON.stringify({ type: 'object', required: ['id', 'qty'], properties: { id: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, additionalProperties: false }),
      },
      failing: {
        'flow.yaml': `
parameters:
  RECEIVER: ${receiver.url}
sender: { path: /http/fail, allowedHeaders: [X-Status] }
steps:
  - http: { address: "{{RECEIVER}}/fail/\${header.X-Status}", requestHeaders: [] }
`,
      },
      lenient: {
        'flow.yaml': `
parameters:
  RECEIVER: ${receiver.url}
sender: { path: /http/lenient }
steps:
  - http: { address: "{{RECEIVER}}/fail/404", throwOnFailure: false }
`,
      },
      refused: { 'flow.yaml': 'sender: { path: /http/refused }\nsteps:\n  - http: { address: "http://127.0.0.1:1/x", timeout: 2s }\n' },
      timeout: { 'flow.yaml': `sender: { path: /http/timeout }\nsteps:\n  - http: { address: "${slow.url}/slow", timeout: 300ms }\n` },
      throws: {
        'flow.yaml': 'sender: { path: /http/throws }\nsteps:\n  - name: Boom\n    script: scripts/boom.ts\n',
        'scripts/boom.ts': `export default function processData() {\n  const reason = 'no customer';\n  throw new Error('order rejected: ' + reason);\n}\n`,
      },
      hangs: {
        'flow.yaml': 'sender: { path: /http/hangs }\nsteps:\n  - script: scripts/never.mjs\n    timeout: 200ms\n',
        'scripts/never.mjs': 'export default function processData() { return new Promise(() => {}); }\n',
      },
    });
    iflow = await startIflow({ flowsDir: flows.dir });
    for (const [name, password, roles] of [
      ['sender', SENDER_PASSWORD, ['Orders.send', 'ESBMessaging.send']],
      ['other', OTHER_PASSWORD, ['Something.else']],
    ] as const) {
      const created = await fetch(`${iflow.url}/api/v1/users`, {
        method: 'POST',
        headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
        body: JSON.stringify({ name, password, roles }),
      });
      assert.equal(created.status, 201);
    }
  });

  after(async () => {
    await iflow.close();
    await receiver.close();
    await slow.close();
    flows.remove();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${iflow.url}${path}`, {
      method: 'POST',
      headers: { authorization: SENDER, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  test('script, set, mapping and http steps run in order and the receiver reply becomes the answer', async () => {
    const before = receiver.received.length;
    const response = await post('/http/steps', { customer: 'ACME', items: [{ price: 2 }, { price: 3 }] }, {
      'x-order': '42',
      'x-correlation-id': 'corr-123',
      'x-not-allowed': 'dropped',
      cookie: 'sid=secret-cookie',
    });
    assert.equal(response.status, 201);
    const messageId = response.headers.get('sap_messageprocessinglogid');
    assert.match(messageId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(response.headers.get('x-receiver'), 'yes');
    assert.equal(response.headers.get('set-cookie'), null, 'receiver cookies are not passed back');
    assert.deepEqual(await response.json(), { received: { customer: 'ACME', total: 5, flow: 'has-param' }, path: '/orders/42' });

    const sent = receiver.received[before];
    assert.equal(sent.method, 'POST');
    assert.equal(sent.headers['x-order'], '42');
    assert.equal(sent.headers['x-order-copy'], 'order 42 by ACME');
    assert.equal(sent.headers['content-type'], 'application/json');
    assert.equal(sent.headers.authorization, undefined, "the caller's Authorization never reaches a receiver");
    assert.equal(sent.headers.cookie, undefined, "the caller's Cookie never reaches a receiver");
    assert.equal(sent.headers['x-not-allowed'], undefined);

    const record = await waitFor(() => iflow.app.store.messageLogs.get(messageId!), { what: 'message log record' });
    assert.equal(record.Status, 'COMPLETED');
    assert.equal(record.CorrelationId, 'corr-123');
    assert.equal(record.IntegrationFlowName, 'steps');
    assert.equal(record.Receiver, new URL(receiver.url).host, 'the receiver a built address reached, for the message log');
    assert.deepEqual(record.Steps.map((s) => [s.name, s.kind, s.status]), [
      ['Enrich', 'script', 'COMPLETED'],
      ['Stamp', 'set', 'COMPLETED'],
      ['Map', 'mapping', 'COMPLETED'],
      ['Send', 'http', 'COMPLETED'],
    ]);
    const line = iflow.logs.records().find((r) => r.messageId === messageId);
    assert.ok(line, 'one log line for the message');
    assert.equal(line.correlationId, 'corr-123');
    assert.equal(line.flow, 'steps');
    assert.equal(line.status, 'COMPLETED');
    assert.equal(typeof line.durationMs, 'number');
    assert.equal((line.steps as unknown[]).length, 4);
    assert.deepEqual(line.steps, record.Steps, 'the log line and the stored record carry the same step timings');
    assert.equal(typeof record.Steps[0].durationMs, 'number');
    assert.match(record.Steps[0].start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('a new correlation id is made when the caller sends none; CPI\'s SAP_MplCorrelationId is honoured', async () => {
    const sap = await post('/http/schema', { id: 'a', qty: 1 }, { SAP_MplCorrelationId: 'sap-corr-9' });
    const id = sap.headers.get('sap_messageprocessinglogid')!;
    const record = await waitFor(() => iflow.app.store.messageLogs.get(id), { what: 'record' });
    assert.equal(record.CorrelationId, 'sap-corr-9');
    const none = await post('/http/schema', { id: 'a', qty: 1 });
    const other = await waitFor(() => iflow.app.store.messageLogs.get(none.headers.get('sap_messageprocessinglogid')!), { what: 'record' });
    assert.match(other.CorrelationId, /^[0-9a-f-]{36}$/);
  });

  test('senders need Basic credentials (401) of a user holding the flow role (403)', async () => {
    const anonymous = await fetch(`${iflow.url}/http/steps`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic/);
    assert.equal(((await anonymous.json()) as ErrorReply).error.code, 'UNAUTHORIZED');
    const wrongPassword = await post('/http/steps', {}, { authorization: basicAuth('sender', 'wrong-password') });
    assert.equal(wrongPassword.status, 401);
    const wrongRole = await post('/http/steps', {}, { authorization: basicAuth('other', OTHER_PASSWORD) });
    assert.equal(wrongRole.status, 403);
    assert.equal(((await wrongRole.json()) as ErrorReply).error.code, 'FORBIDDEN');
  });

  test('paths match case-insensitively; unknown paths are 404 and other methods 405', async () => {
    const upper = await post('/HTTP/Schema', { id: 'a', qty: 1 });
    assert.equal(upper.status, 200);
    assert.equal(await upper.text(), 'ok application/json');
    assert.equal((await post('/http/nothing-here', {})).status, 404);
    const get = await fetch(`${iflow.url}/http/schema`, { headers: { authorization: SENDER } });
    assert.equal(get.status, 405);
  });

  test('bodies over the flow limit are 413, malformed JSON and schema violations are 400', async () => {
    const large = await post('/http/schema', { id: 'x'.repeat(2000), qty: 1 });
    assert.equal(large.status, 413);
    assert.equal(((await large.json()) as ErrorReply).error.code, 'PAYLOAD_TOO_LARGE');
    // Chunked (no Content-Length): the flow's limit still holds once the bytes are read.
    const chunks = [Buffer.from(`{"id": "${'y'.repeat(1500)}"`), Buffer.from(', "qty": 1}')];
    const chunked = await fetch(`${iflow.url}/http/schema`, {
      method: 'POST',
      headers: { authorization: SENDER, 'content-type': 'application/json' },
      body: new ReadableStream({ pull: (controller) => (chunks.length ? controller.enqueue(chunks.shift()!) : controller.close()) }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(((await chunked.json()) as ErrorReply).error.code, 'PAYLOAD_TOO_LARGE');

    const malformed = await post('/http/schema', '{"id": "a", ');
    assert.equal(malformed.status, 400);
    const bad = (await malformed.json()) as ErrorReply;
    assert.equal(bad.error.code, 'INVALID_JSON');
    assert.ok(bad.error.messageId);

    const invalid = await post('/http/schema', { id: 7, qty: 0, extra: true });
    assert.equal(invalid.status, 400);
    const violations = (await invalid.json()) as ErrorReply;
    assert.equal(violations.error.code, 'SCHEMA_VIOLATION');
    const pointers = violations.error.details!.map((d) => d.pointer).sort();
    assert.deepEqual(pointers, ['/', '/id', '/qty']);
    assert.match(violations.error.message, /\/ must NOT have additional properties \("extra"\)/, 'the message names the unknown property');
    const record = await waitFor(() => iflow.app.store.messageLogs.get(violations.error.messageId!), { what: 'record' });
    assert.equal(record.Status, 'FAILED');
    assert.equal(record.Error?.code, 'SCHEMA_VIOLATION');
  });

  test('receiver 4xx and 5xx fail the message with 502 carrying the receiver status and a truncated body', async () => {
    for (const status of [400, 503]) {
      const response = await post('/http/fail', {}, { 'x-status': String(status) });
      assert.equal(response.status, 502);
      const body = (await response.json()) as ErrorReply;
      assert.equal(body.error.code, 'RECEIVER_ERROR');
      assert.match(body.error.message, new RegExp(`answered ${status}`));
      assert.ok(body.error.message.length < 800, 'receiver body truncated');
      const record = await waitFor(() => iflow.app.store.messageLogs.get(body.error.messageId!), { what: 'record' });
      assert.equal(record.Error?.receiverStatus, status);
      assert.equal(record.Error?.requestId, 'graph-req-1');
    }
  });

  test('a receiver path built from a missing header still fails cleanly', async () => {
    const response = await post('/http/fail', {});
    assert.equal(response.status, 502);
  });

  test('throwOnFailure false passes the receiver status and body through', async () => {
    const response = await post('/http/lenient', {});
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'Oops');
  });

  test('connection refused is a 502 and a timeout a 504', async () => {
    const refused = await post('/http/refused', {});
    assert.equal(refused.status, 502);
    assert.equal(((await refused.json()) as ErrorReply).error.code, 'RECEIVER_UNREACHABLE');
    const timedOut = await post('/http/timeout', {});
    assert.equal(timedOut.status, 504);
    assert.equal(((await timedOut.json()) as ErrorReply).error.code, 'RECEIVER_TIMEOUT');
  });

  test('a throwing script fails the message with its message, file and line; no stack trace', async () => {
    const response = await post('/http/throws', {});
    assert.equal(response.status, 500);
    const body = (await response.json()) as ErrorReply;
    assert.equal(body.error.code, 'SCRIPT_ERROR');
    assert.match(body.error.message, /throws\/scripts\/boom\.ts:3/);
    assert.match(body.error.message, /order rejected: no customer/);
    assert.doesNotMatch(JSON.stringify(body), /\n\s+at /);
  });

  test('a script that never settles fails at the step timeout', async () => {
    const response = await post('/http/hangs', {});
    assert.equal(response.status, 500);
    const body = (await response.json()) as ErrorReply;
    assert.equal(body.error.code, 'SCRIPT_TIMEOUT');
    assert.match(body.error.message, /200 ms/);
  });

  test('passwords and bearer tokens sent by callers never appear in the logs', async () => {
    await post('/http/steps', { customer: 'x', items: [] }, { authorization: BEARER, 'x-order': '1' });
    await post('/http/steps', { customer: 'x', items: [] }, { 'x-order': '2' });
    await fetch(`${iflow.url}/api/v1/users?password=${SENDER_PASSWORD}`, { headers: { authorization: iflow.adminAuth } });
    await waitFor(() => iflow.logs.records().filter((r) => r.flow === 'steps').length >= 3, { what: 'log lines' });
    const text = iflow.logs.text;
    for (const secret of [SENDER_PASSWORD, OTHER_PASSWORD, 'eyJ-caller-token', Buffer.from(`sender:${SENDER_PASSWORD}`).toString('base64'), 'secret-cookie']) {
      assert.ok(!text.includes(secret), `log output must not contain ${secret.slice(0, 6)}…`);
    }
  });

  test('a keep-alive connection that proved a login loses it as soon as the user changes', async () => {
    const created = await fetch(`${iflow.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'keeper', password: 'keeper-password-1', roles: ['ESBMessaging.send'] }),
    });
    assert.equal(created.status, 201);
    const connection = new Client(iflow.url, { pipelining: 1 });
    let connects = 0;
    connection.on('connect', () => connects++);
    const send = async (authorization: string) => {
      const response = await connection.request({ path: '/http/schema', method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: '{"id":"a","qty":1}' });
      await response.body.dump();
      return response.statusCode;
    };
    try {
      const keeper = basicAuth('keeper', 'keeper-password-1');
      assert.deepEqual([await send(keeper), await send(keeper), await send(keeper)], [200, 200, 200]);
      assert.equal(await send(basicAuth('keeper', 'wrong-password')), 401, 'another header on the same connection is checked on its own');
      assert.equal(await send(keeper), 200);

      const changed = await fetch(`${iflow.url}/api/v1/users/keeper`, {
        method: 'PUT',
        headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
        body: JSON.stringify({ password: 'keeper-password-2' }),
      });
      assert.equal(changed.status, 200);
      assert.equal(await send(keeper), 401, 'the old password stops working on the connection that proved it');
      assert.equal(await send(basicAuth('keeper', 'keeper-password-2')), 200);
      assert.equal(connects, 1, 'every request went over one connection');
    } finally {
      await connection.close();
    }
  });
});

test('callers refused at a flow endpoint are logged: the first at once, with flow, user and address, never the password', async (t) => {
  const iflow = await startIflowWithFlows(t, { guarded: { 'flow.yaml': 'sender: { path: /http/guarded, role: Orders.send }\nsteps:\n  - set: { body: ok }\n' } });
  const call = (authorization?: string) => fetch(`${iflow.url}/http/guarded`, { method: 'POST', headers: authorization ? { authorization } : {} });
  const refusals = () => iflow.logs.records().filter((r) => r.msg === 'caller refused at a flow endpoint' || r.msg === 'callers still refused at flow endpoints');
  assert.equal((await fetch(`${iflow.url}/api/v1/users`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'clerk', password: 'clerk-password-1', roles: ['monitor'] }) })).status, 201);

  assert.equal((await call(basicAuth('clerk', 'clerk-wrong-password'))).status, 401);
  const [first] = refusals();
  assert.deepEqual(
    { level: first?.level, flow: first?.flow, statusCode: first?.statusCode, user: first?.user, remoteAddress: first?.remoteAddress },
    { level: 40, flow: 'guarded', statusCode: 401, user: 'clerk', remoteAddress: '127.0.0.1' },
  );

  // More within the interval are counted for a summary line, not logged one by one.
  assert.equal((await call()).status, 401);
  assert.equal((await call(basicAuth('Secret.Passw0rd', 'clerk'))).status, 401, 'a password sent as the user name');
  assert.equal((await call(basicAuth('clerk', 'clerk-password-1'))).status, 403, 'a user without the role');
  assert.equal(refusals().length, 1);
  await iflow.close();
  const summary = refusals()[1];
  assert.equal(summary?.msg, 'callers still refused at flow endpoints', 'the count is logged at the latest when the app closes');
  assert.deepEqual(
    { count: summary.count, flows: summary.flows, statusCodes: summary.statusCodes, users: summary.users, remoteAddresses: summary.remoteAddresses },
    { count: 3, flows: ['guarded'], statusCodes: ['401', '403'], users: ['clerk'], remoteAddresses: ['127.0.0.1'] },
    'only names of users that exist are listed',
  );
  for (const secret of ['clerk-wrong-password', 'Secret.Passw0rd', 'clerk-password-1']) assert.ok(!iflow.logs.text.includes(secret), secret);
});

test("a body the caller sent as something else than the JSON a flow reads is a 400 INVALID_JSON; a receiver's is the flow's 500", async (t) => {
  const receiver = await startReceiver({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'plain text' });
  t.after(() => receiver.close());
  const iflow = await startIflowWithFlows(t, {
    mapped: { 'flow.yaml': 'sender: { path: /http/mapped }\nsteps:\n  - mapping: greet.jsonata\n', 'greet.jsonata': '{ "hello": name }\n' },
    scripted: { 'flow.yaml': 'sender: { path: /http/scripted }\nsteps:\n  - script: read.mjs\n', 'read.mjs': 'export default function (message) { message.setBody({ got: message.getBodyAsJson() }); }\n' },
    relayed: { 'flow.yaml': `sender: { path: /http/relayed }\nsteps:\n  - http: { address: "${receiver.url}/text" }\n  - mapping: greet.jsonata\n`, 'greet.jsonata': '{ "hello": name }\n' },
    // A content modifier that sets the body to itself leaves it the caller's (and JSON stays JSON).
    modified: {
      'flow.yaml': 'sender: { path: /http/modified }\nsteps:\n  - set: { headers: { X-Seen: "yes" }, body: "${body}" }\n  - mapping: greet.jsonata\n  - set: { body: "${ body }" }\n',
      'greet.jsonata': '{ "hello": name }\n',
    },
  });
  const send = (path: string, body: string, contentType = 'text/plain') =>
    fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': contentType }, body });

  for (const path of ['/http/mapped', '/http/scripted', '/http/modified']) {
    const answer = await send(path, 'name=Ada');
    assert.equal(answer.status, 400, path);
    const { error } = (await answer.json()) as ErrorReply;
    assert.equal(error.code, 'INVALID_JSON', path);
    assert.match(error.message, /reads the body as JSON, and the body sent is not JSON/);
    assert.ok(error.messageId, 'a message was made, and logged');
    assert.ok(!error.message.includes('Ada'), 'the body is not quoted back');
  }
  assert.equal((await send('/http/mapped', '{"name":"Ada"}')).status, 200, 'JSON without a JSON Content-Type is read as JSON');
  const modified = await send('/http/modified', '{"name":"Ada"}');
  assert.equal(modified.status, 200);
  assert.match(modified.headers.get('content-type') ?? '', /^application\/json/, 'the mapping result set to itself is still a JSON body');
  assert.deepEqual(await modified.json(), { hello: 'Ada' });
  const relayed = await send('/http/relayed', '{"name":"Ada"}', 'application/json');
  assert.equal(relayed.status, 500);
  assert.equal(((await relayed.json()) as ErrorReply).error.code, 'MAPPING_ERROR', "a receiver's reply that is not JSON is the flow's problem");
});

test('http retry: 503s and timeouts are tried again up to the attempts; a failure after retries says how many went out', async (t) => {
  let flaky = 0;
  let flakyFirst = 0;
  let dated = 0;
  const receiver = await startReceiver((request) => {
    if (request.url === '/flaky') return ++flaky <= 2 ? { status: 503 } : { status: 200, headers: { 'content-type': 'application/json' }, body: { ok: true } };
    if (request.url === '/flaky-first') return ++flakyFirst <= 2 ? { status: 503 } : { status: 200 };
    if (request.url === '/second') return { status: 200, headers: { 'content-type': 'application/json' }, body: { second: true } };
    if (request.url === '/down') return { status: 503, body: 'maintenance' };
    // Retry-After as an HTTP-date (already past: send again at once, not after the step's 20 s delay).
    if (request.url === '/dated') return ++dated <= 1 ? { status: 429, headers: { 'retry-after': new Date(Date.now() - 60_000).toUTCString() } } : { status: 200 };
    return { hang: true };
  });
  t.after(() => receiver.close());
  const step = (path: string) => `sender: { path: /http${path} }\nsteps:\n  - http: { address: "${receiver.url}${path}", timeout: 300ms, retry: { attempts: 2, delay: 10ms } }\n`;
  const iflow = await startIflowWithFlows(t, {
    flaky: { 'flow.yaml': step('/flaky') },
    down: { 'flow.yaml': step('/down') },
    hung: { 'flow.yaml': step('/hung') },
    // A retried step, then one that is not: the second step's timing must not inherit the first one's attempts.
    two: { 'flow.yaml': `${step('/flaky-first').replace('/http/flaky-first', '/http/two')}  - http: { address: "${receiver.url}/second" }\n` },
    dated: { 'flow.yaml': step('/dated').replace('delay: 10ms', 'delay: 20s') },
  });
  const call = (path: string) => fetch(`${iflow.url}/http${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  const sentTo = (path: string) => receiver.received.filter((request) => request.url === path).length;

  const recovered = await call('/flaky');
  assert.equal(recovered.status, 200);
  assert.deepEqual(await recovered.json(), { ok: true });
  assert.equal(sentTo('/flaky'), 3, 'two 503s, then the answer');

  const down = await call('/down');
  assert.equal(down.status, 502);
  assert.match(((await down.json()) as ErrorReply).error.message, /^receiver 127\.0\.0\.1:\d+ answered 503 Service Unavailable \(3 attempts\): maintenance$/);
  assert.equal(sentTo('/down'), 3);

  const hung = await call('/hung');
  assert.equal(hung.status, 504);
  assert.match(((await hung.json()) as ErrorReply).error.message, /did not answer within 300 ms \(3 attempts\)$/);
  assert.equal(sentTo('/hung'), 3, 'a timed-out request is sent again: it may have reached the receiver each time');

  // The message log's steps say how many requests a retried step sent (nothing when it sent one).
  const once = await call('/flaky');
  assert.equal(once.status, 200);
  const attempts = async (answer: Response) => {
    const id = answer.headers.get('sap_messageprocessinglogid')!;
    const record = await waitFor(() => iflow.app.store.messageLogs.get(id), { what: `message log ${id}` });
    return record.Steps.map((s) => s.attempts);
  };
  assert.deepEqual(await attempts(recovered), [3]);
  assert.deepEqual(await attempts(down), [3]);
  assert.deepEqual(await attempts(hung), [3]);
  assert.deepEqual(await attempts(once), [undefined]);
  const two = await call('/two');
  assert.equal(two.status, 200);
  assert.deepEqual(await attempts(two), [3, undefined]);
  const afterDate = await fetch(`${iflow.url}/http/dated`, { method: 'POST', headers: { authorization: iflow.adminAuth }, signal: AbortSignal.timeout(10_000) });
  assert.equal(afterDate.status, 200, "a Retry-After date is the receiver's word on when to send again");
  assert.deepEqual(await attempts(afterDate), [2]);
  const line = iflow.logs.records().find((r) => r.messageId === recovered.headers.get('sap_messageprocessinglogid'));
  assert.equal((line?.steps as { attempts?: number }[] | undefined)?.[0].attempts, 3, 'the log line too');
});

test("a caller's values in the receiver address stay data: encoded in the path and the query, never leaving their place", async (t) => {
  const receiver = await startReceiver({ status: 200, body: { ok: true } });
  t.after(() => receiver.close());
  const iflow = await startIflowWithFlows(t, {
    addressed: {
      'flow.yaml': `sender: { path: /http/addressed, allowedHeaders: [X-Id, X-Q] }\nsteps:\n  - http: { address: "${receiver.url}/receive/\${header.X-Id}?q=\${header.X-Q}&fixed=1" }\n`,
    },
  });
  const call = (id: string, q = 'x') => fetch(`${iflow.url}/http/addressed`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'x-id': id, 'x-q': q } });

  assert.equal((await call('../admin?x=1#f', 'a&fixed=2')).status, 200);
  assert.equal(receiver.received.at(-1)?.url, '/receive/..%2Fadmin%3Fx%3D1%23f?q=a%26fixed%3D2&fixed=1');
  // % is data too: a value is never decoded on the way.
  assert.equal((await call('noreply%40contoso.com', 'caf\u00e9')).status, 200);
  assert.equal(receiver.received.at(-1)?.url, '/receive/noreply%2540contoso.com?q=caf%C3%A9&fixed=1');

  const sent = receiver.received.length;
  for (const id of ['..', '.']) {
    const refused = await call(id);
    assert.equal(refused.status, 500);
    const { error } = (await refused.json()) as ErrorReply;
    assert.equal(error.code, 'RECEIVER_ADDRESS_INVALID');
    assert.match(error.message, /^\$\{header\.X-Id\} makes a segment of the receiver address's path /);
  }
  assert.equal(receiver.received.length, sent, 'nothing sent');
});

test('a JSON body that is not UTF-8, or nests deeper than 1000 levels, is the caller\'s 400 INVALID_JSON, not a flow failure', async (t) => {
  const iflow = await startIflowWithFlows(t, { mapped: { 'flow.yaml': 'sender: { path: /http/mapped }\nsteps:\n  - mapping: greet.jsonata\n', 'greet.jsonata': '{ "hello": name }\n' } });
  const send = (body: Buffer) => fetch(`${iflow.url}/http/mapped`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' }, body });
  const nested = (depth: number) => Buffer.from(`${'['.repeat(depth)}${' '.repeat(100)}${']'.repeat(depth)}`);

  const cases: [Buffer, string][] = [
    [Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 'Malformed JSON body: it is not UTF-8'],
    [nested(1001), 'Malformed JSON body: it nests deeper than 1000 levels'],
    [nested(100_000), 'Malformed JSON body: it nests deeper than 1000 levels'],
  ];
  for (const [body, message] of cases) {
    const answer = await send(body);
    assert.equal(answer.status, 400);
    const { error } = (await answer.json()) as ErrorReply;
    assert.deepEqual([error.code, error.message], ['INVALID_JSON', message]);
  }
  // Brackets inside strings do not count; 1000 levels and UTF-8 text are fine.
  assert.equal((await send(Buffer.from(JSON.stringify({ name: 'Zo\u00eb', noise: '['.repeat(3000) })))).status, 200);
  assert.deepEqual(await (await send(Buffer.from(JSON.stringify({ name: 'Zo\u00eb' })))).json(), { hello: 'Zo\u00eb' });
  assert.equal((await send(nested(1000))).status, 200);
});

test('a mapping that fails at run time names the JSONata token and its position', async (t) => {
  // $f is bound (so the deploy check lets it through) to a value, not a function: only a message finds out.
  const iflow = await startIflowWithFlows(t, { nosuch: { 'flow.yaml': 'sender: { path: /http/nosuch }\nsteps:\n  - mapping: m.jsonata\n', 'm.jsonata': '( $f := name; { "a": $f(1) } )\n' } });
  const answer = await fetch(`${iflow.url}/http/nosuch`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' }, body: '{"name":"Ada"}' });
  assert.equal(answer.status, 500);
  const { error } = (await answer.json()) as ErrorReply;
  assert.equal(error.code, 'MAPPING_ERROR');
  assert.equal(error.message, 'mapping m.jsonata failed ("f" at character 24): Attempted to invoke a non-function');
});

test("a script's parameters are the flow's, read-only: logging and cloning them works, a write throws and changes nothing", async (t) => {
  const iflow = await startIflowWithFlows(t, {
    params: {
      'flow.yaml': 'parameters: { SHOP: berlin }\nsender: { path: /http/params }\nsteps:\n  - script: s.mjs\n  - mapping: m.jsonata\n',
      's.mjs': [
        'export default function processData(message, context) {',
        "  context.log.info(context.parameters, 'parameters');",
        '  const copy = structuredClone(context.parameters);',
        "  try { context.parameters.SHOP = 'paris'; } catch (err) { copy.writeFailed = err instanceof TypeError; }",
        '  message.setBody(copy);',
        '}',
      ].join('\n'),
      'm.jsonata': '$merge([$, { "mapped": $parameters.SHOP }])\n',
    },
  });
  for (let i = 0; i < 2; i++) {
    const answer = await fetch(`${iflow.url}/http/params`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { SHOP: 'berlin', writeFailed: true, mapped: 'berlin' });
  }
  assert.ok(iflow.logs.records().some((r) => r.msg === 'parameters' && r.SHOP === 'berlin'), 'pino logs the parameters object');
});

test('an empty reply goes without a Content-Type; a body, or a Content-Type the flow set, keeps one', async (t) => {
  const iflow = await startIflowWithFlows(t, {
    accepted: {
      'flow.yaml': 'sender: { path: /http/accepted }\nsteps:\n  - script: accept.mjs\n',
      'accept.mjs': 'export default function processData(message) { message.status = 202; message.setBody(""); }\n',
    },
    typed: {
      'flow.yaml': 'sender: { path: /http/typed }\nsteps:\n  - set: { headers: { Content-Type: "application/xml" }, body: "" }\n',
    },
    text: { 'flow.yaml': 'sender: { path: /http/text }\nsteps:\n  - set: { body: "done" }\n' },
  });
  // Without a body of their own: a caller's Content-Type would be a message header, and replied.
  const call = (path: string) => fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  const accepted = await call('/http/accepted');
  assert.equal(accepted.status, 202);
  assert.equal(await accepted.text(), '');
  assert.equal(accepted.headers.get('content-type'), null);
  assert.equal(accepted.headers.get('content-length'), '0');
  assert.ok(accepted.headers.get('sap_messageprocessinglogid'));
  const typed = await call('/http/typed');
  assert.equal(typed.headers.get('content-type'), 'application/xml');
  assert.equal(await typed.text(), '');
  const text = await call('/http/text');
  assert.equal(await text.text(), 'done');
  assert.ok(text.headers.get('content-type'), 'a body is described');
});

test("http responseHeaders: the listed receiver headers reach the caller, but never one named like a credential; Content-Type follows the receiver's body", async (t) => {
  const receiver = await startReceiver({
    status: 200,
    headers: {
      'content-type': 'application/json',
      'x-plain': 'p',
      'x-other': 'o',
      'x-monkey': 'm',
      'x-api-key': 'receiver-key-123456',
      'www-authenticate': 'Bearer realm="r"',
      'set-cookie': 'session=1',
      'idempotency-key': 'i-1',
    },
    body: { ok: true },
  });
  t.after(() => receiver.close());
  const iflow = await startIflowWithFlows(t, {
    listed: {
      'flow.yaml': `sender: { path: /http/listed }\nsteps:\n  - http:\n      address: "${receiver.url}/x"\n      responseHeaders: [x-plain, www-authenticate, x-api-key, set-cookie]\n  - set: { headers: { X-Copied: "\${header.X-Api-Key}" } }\n`,
    },
    all: { 'flow.yaml': `sender: { path: /http/all }\nsteps:\n  - http: { address: "${receiver.url}/x" }\n` },
  });
  // The caller's own Content-Type must not stay on the receiver's body.
  const call = (path: string) => fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'text/plain' }, body: 'hello' });

  const listed = await call('/http/listed');
  assert.equal(listed.status, 200);
  assert.deepEqual(await listed.json(), { ok: true });
  assert.match(String(listed.headers.get('content-type')), /^application\/json/, "the receiver's, though not listed");
  assert.equal(listed.headers.get('x-plain'), 'p');
  assert.equal(listed.headers.get('www-authenticate'), 'Bearer realm="r"', 'a challenge, not a credential');
  assert.equal(listed.headers.get('x-other'), null, 'not listed');
  assert.equal(listed.headers.get('x-api-key'), null, 'named like a credential: never replied, even when listed');
  assert.equal(listed.headers.get('set-cookie'), null);
  assert.equal(listed.headers.get('x-copied'), 'receiver-key-123456', 'a later step can read it');

  const all = await call('/http/all');
  assert.match(String(all.headers.get('content-type')), /^application\/json/);
  for (const [name, value] of [['x-plain', 'p'], ['x-other', 'o'], ['www-authenticate', 'Bearer realm="r"']]) assert.equal(all.headers.get(name), value, name);
  // Held back by name, fail closed: X-Monkey for the "key" in it.
  for (const name of ['x-api-key', 'set-cookie', 'idempotency-key', 'x-monkey']) assert.equal(all.headers.get(name), null, name);

  // The listed names that cannot reach the caller are deploy warnings, each at its place.
  const warned = iflow.logs.records().find((r) => r.msg === 'flow deployed with warnings' && r.flow === 'listed') as { warnings: { pointer: string; message: string }[] } | undefined;
  assert.deepEqual(
    warned?.warnings.map((w) => [w.pointer, w.message]),
    [
      ['/steps/0/http/responseHeaders/2', 'x-api-key is named like a credential: later steps can read it, but it is never replied to the caller'],
      ['/steps/0/http/responseHeaders/3', 'set-cookie is never copied from a receiver (framing, or a cookie for iflow itself)'],
    ],
  );
});

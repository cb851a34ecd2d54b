import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { startIflow, startIflowWithFlows, waitFor, type RunningIflow } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';
import { startReceiver } from '../support/receiver.ts';
import { redactSecrets } from '../../src/logging/index.ts';
import { redactCredentialsInText } from '../../src/security/redact.ts';
import { startFakeEntra } from '../support/fake-entra.ts';
import { createAndAuthorize, wire } from '../credentials/helpers.ts';

type ErrorReply = { error: { code: string; message: string; messageId?: string } };
const SCRIPT_TOKEN = 'Bearer script-set-token-0123456789';

/** Failures that must never leak a credential, and replies a script can break, answered in the error contract. */
describe('hardening of flow endpoints', () => {
  let iflow: RunningIflow;
  let echo: Awaited<ReturnType<typeof startReceiver>>;
  let stall: Server;
  let stallUrl: string;
  let flows: ReturnType<typeof writeFlows>;

  before(async () => {
    // Echoes what it got, as some receivers' error pages do.
    echo = await startReceiver((request) => ({ status: request.url.startsWith('/ok') ? 200 : 401, headers: { 'content-type': 'application/json' }, body: { got: request.headers.authorization, rawHeaders: request.rawHeaders } }));
    // Sends headers and then stalls the body.
    stall = createServer((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\npartial'));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
    const address = stall.address() as { port: number };
    stallUrl = `http://127.0.0.1:${address.port}`;

    flows = writeFlows({
      echo: {
        'flow.yaml': `
sender: { path: /http/echo, allowedHeaders: [X-Target] }
steps:
  - set: { headers: { Authorization: "${SCRIPT_TOKEN}", Content-Type: "text/plain" }, body: '{"a":1}' }
  - script: scripts/json.mjs
  - http: { address: "${echo.url}/\${property.target}", requestHeaders: [Authorization, Content-Type] }
`,
        'scripts/json.mjs': "export default function (message) { message.setProperty('target', message.getHeader('X-Target') ?? 'fail'); message.setBody({ a: 1 }); }\n",
      },
      stall: { 'flow.yaml': `sender: { path: /http/stall }\nsteps:\n  - http: { address: "${stallUrl}/x", timeout: 300ms }\n` },
      script: {
        'flow.yaml': 'sender: { path: /http/script, allowedHeaders: [X-Case] }\nsteps:\n  - script: scripts/cases.mjs\n',
        'scripts/cases.mjs': `
import { Message } from '${new URL('../../src/runtime/message.ts', import.meta.url).href}';
export default function processData(message) {
  switch (message.getHeader('X-Case')) {
    case 'api-key': message.setHeader('X-Api-Key', 'script-api-key-4711'); message.setHeader('X-Visible', 'yes'); return;
    case 'bad-status': message.status = 99; return;
    case 'bad-header': message.setHeader('X-Bad', 'a\\r\\nInjected: 1'); return;
    case 'cyclic': { const body = {}; body.self = body; message.setBody(body); return; }
    case 'status-200-error': throw Object.assign(new Error('custom failure'), { statusCode: 200, code: 'X' });
    case 'new-message': { const other = new Message({ id: 'not-my-id', correlationId: 'c' }); other.setBody('from the new message'); return other; }
    case 'not-a-message': return { notAMessage: true };
  }
}
`,
      },
    });
    iflow = await startIflow({ flowsDir: flows.dir });
  });

  after(async () => {
    await iflow.close();
    await echo.close();
    stall.close();
    flows.remove();
  });

  const post = (path: string, headers: Record<string, string> = {}, body = '{}') =>
    fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'application/json', ...headers }, body });

  test('a receiver echoing the Authorization it got never hands the token to the caller, the log or the store', async () => {
    const response = await post('/http/echo');
    assert.equal(response.status, 502);
    const body = (await response.json()) as ErrorReply;
    assert.ok(!JSON.stringify(body).includes('script-set-token'), body.error.message);
    assert.match(body.error.message, /\[Redacted\]/);
    const record = await waitFor(() => iflow.app.store.messageLogs.get(body.error.messageId!), { what: 'record' });
    assert.ok(!JSON.stringify(record).includes('script-set-token'));
    await waitFor(() => iflow.logs.records().some((r) => r.messageId === body.error.messageId), { what: 'log line' });
    assert.ok(!iflow.logs.text.includes('script-set-token'));
  });

  test('receivers get one Content-Type and one Authorization, the computed ones', async () => {
    const response = await post('/http/echo', { 'x-target': 'ok' });
    assert.equal(response.status, 200);
    const sent = echo.received.at(-1)!;
    const names = (sent.rawHeaders ?? []).filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.equal(names.filter((n) => n === 'content-type').length, 1);
    assert.equal(names.filter((n) => n === 'authorization').length, 1);
    assert.equal(sent.headers['content-type'], 'application/json');
  });

  test('a body that stalls after the headers fails at the step timeout with 504', async () => {
    const response = await post('/http/stall');
    assert.equal(response.status, 504);
    assert.equal(((await response.json()) as ErrorReply).error.code, 'RECEIVER_TIMEOUT');
  });

  test('malformed JSON is a 400 that does not quote the body', async () => {
    const response = await post('/http/script', {}, '{"password":hunter2-SECRET}');
    assert.equal(response.status, 400);
    const body = (await response.json()) as ErrorReply;
    assert.equal(body.error.code, 'INVALID_JSON');
    assert.match(body.error.message, /^Malformed JSON body( at position \d+)?$/);
    await waitFor(() => iflow.logs.records().some((r) => r.messageId === body.error.messageId), { what: 'log line' });
    assert.ok(!iflow.logs.text.includes('hunter2'));
  });

  test('headers that look like credentials are not replied to the caller', async () => {
    const response = await post('/http/script', { 'x-case': 'api-key' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-api-key'), null);
    assert.equal(response.headers.get('x-visible'), 'yes');
  });

  for (const [name, pattern] of [
    ['bad-status', /status 99/],
    ['bad-header', /header "X-Bad"/],
    ['cyclic', /does not serialise/],
  ] as const) {
    test(`a final message HTTP cannot carry (${name}) is a 500 INVALID_REPLY, logged as FAILED`, async () => {
      const response = await post('/http/script', { 'x-case': name });
      assert.equal(response.status, 500);
      const body = (await response.json()) as ErrorReply;
      assert.equal(body.error.code, 'INVALID_REPLY');
      assert.match(body.error.message, pattern);
      const record = await waitFor(() => iflow.app.store.messageLogs.get(body.error.messageId!), { what: 'record' });
      assert.equal(record.Status, 'FAILED');
    });
  }

  test("a script's thrown statusCode does not choose the reply status", async () => {
    const response = await post('/http/script', { 'x-case': 'status-200-error' });
    assert.equal(response.status, 500);
    assert.equal(((await response.json()) as ErrorReply).error.code, 'SCRIPT_ERROR');
  });

  test('a returned message is taken over but keeps the message id; anything else returned is an error', async () => {
    const response = await post('/http/script', { 'x-case': 'new-message' });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'from the new message');
    const id = response.headers.get('sap_messageprocessinglogid')!;
    assert.notEqual(id, 'not-my-id');
    assert.ok(await waitFor(() => iflow.app.store.messageLogs.get(id), { what: 'record' }));
    assert.equal(await iflow.app.store.messageLogs.get('not-my-id'), undefined);

    const wrong = await post('/http/script', { 'x-case': 'not-a-message' });
    assert.equal(wrong.status, 500);
    assert.match(((await wrong.json()) as ErrorReply).error.message, /not a message/);
  });

  test('a malformed URL is a JSON 400 that does not repeat the URL (its query may hold a secret)', async () => {
    for (const path of ['/api/v1/flows/%ZZ?password=Quoted-Secret-1', '/http/hello%FF?apikey=Quoted-Secret-1', '/OAuthTokenFromCode/%ZZ?code=Quoted-Secret-1']) {
      const response = await fetch(`${iflow.url}${path}`, { headers: { authorization: iflow.adminAuth } });
      assert.equal(response.status, 400, path);
      const text = await response.text();
      assert.ok(!text.includes('Quoted-Secret-1'), text);
      assert.deepEqual(JSON.parse(text), { error: { code: 'BAD_URL', message: 'The URL holds a %-escape that is not valid UTF-8 (such as %ZZ or %FF)' } });
    }
  });
});

test('log redaction catches secret keys in any case and Authorization-like values a few levels deep', () => {
  const input = { headers: { Authorization: 'Bearer abc', 'X-Api-Key': 'k' }, nested: [{ value: 'Basic Zm9vOmJhcg==' }], url: '/cb?code=123&state=9', keep: 'plain', count: 3 };
  const out = redactSecrets(input) as typeof input;
  assert.deepEqual(out, { headers: { Authorization: '[Redacted]', 'X-Api-Key': '[Redacted]' }, nested: [{ value: '[Redacted]' }], url: '/cb?code=[Redacted]&state=[Redacted]', keep: 'plain', count: 3 });
  assert.equal(input.headers.Authorization, 'Bearer abc', 'the original object is not changed');
  const clean = { messageId: 'm', steps: [{ name: 'a', durationMs: 1 }] };
  assert.equal(redactSecrets(clean), clean, 'objects without secrets pass through as they are');
});

test("a script's error text loses the secrets the secure store gave it and any Authorization-like value before the caller, the log or the message log see it", async (t) => {
  const password = 'basic-password-Secret-77';
  const iflow = await startIflowWithFlows(t, {
    leaky: {
      'flow.yaml': 'sender: { path: /http/leaky }\nsteps:\n  - script: leak.mjs\n',
      // The credential is fetched on the first message only and kept in the module, as scripts do.
      'leak.mjs': `let cached;
export default async function (message, context) {
  cached ??= await context.secureStore.getUserCredential('Partner');
  const basic = Buffer.from(cached.user + ':' + cached.password).toString('base64');
  throw new Error('partner refused ' + cached.password + ' (' + basic + ') with Authorization: Bearer eyJscript.token-1 and Basic dXNlcjpwdw==');
}
`,
    },
  });
  const created = await fetch(`${iflow.url}/api/v1/credentials`, {
    method: 'POST',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Partner', type: 'basic', user: 'partner', password }),
  });
  assert.equal(created.status, 201);

  const basic = Buffer.from(`partner:${password}`).toString('base64');
  for (const round of ['first message', 'a later message, with the credential kept from the first']) {
    const answer = await fetch(`${iflow.url}/http/leaky`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
    assert.equal(answer.status, 500, round);
    const { error } = (await answer.json()) as ErrorReply;
    assert.equal(error.code, 'SCRIPT_ERROR');
    assert.match(error.message, /^script leaky\/leak\.mjs:5 failed: partner refused \[Redacted\] \(\[Redacted\]\) with Authorization: Bearer \[Redacted\] and Basic \[Redacted\]$/, round);
    const record = await waitFor(() => iflow.app.store.messageLogs.get(error.messageId!), { what: 'the message log' });
    const stored = JSON.stringify(record);
    for (const secret of [password, basic, 'eyJscript.token-1', 'dXNlcjpwdw==']) {
      assert.ok(!stored.includes(secret), `message log holds ${secret.slice(0, 6)}… (${round})`);
      assert.ok(!iflow.logs.text.includes(secret), `log holds ${secret.slice(0, 6)}… (${round})`);
    }
  }
});

test('redactCredentialsInText takes Bearer and Basic credentials out of a text and leaves the words alone', () => {
  assert.equal(
    redactCredentialsInText('Basic auth required; Authorization: Bearer eyJ.abc-defgh, basic dXNlcjpwdw=='),
    'Basic auth required; Authorization: Bearer [Redacted], basic [Redacted]',
  );
});

test('what the secure store gave a script never reaches the caller in a reply header of any name, nor in an echo or another step\'s error', async (t) => {
  // A quote in it: a receiver's JSON echo holds it escaped, not as it is.
  const password = 'basic-pass"word-Echoed-31';
  const longPassword = `Long-Secret-${'x7Q9'.repeat(20)}`;
  const escaped = JSON.stringify(password).slice(1, -1);
  const leaks = (text: string) => text.includes(password) || text.includes(escaped);
  // Echoes the header it got in a 400, JSON-escaped, as some receivers' error pages do.
  const echo = await startReceiver((request) => ({ status: 400, headers: { 'content-type': 'application/json' }, body: { got: request.headers['x-partner'] } }));
  t.after(() => echo.close());
  // Kept in the module from the first message, as scripts do.
  const put = `let cached;
export default async function (message, context) {
  cached ??= await context.secureStore.getUserCredential('Partner');
  message.setHeader('X-Partner', 'pw="' + cached.password + '"');
  message.setHeader('X-Plain', 'visible');
}
`;
  const iflow = await startIflowWithFlows(t, {
    // The script's header is left on the message and replied.
    kept: { 'flow.yaml': 'sender: { path: /http/kept }\nsteps:\n  - script: put.mjs\n', 'put.mjs': put },
    // A password of 3 characters, set as a header's whole value.
    short: {
      'flow.yaml': 'sender: { path: /http/short }\nsteps:\n  - script: short.mjs\n',
      'short.mjs': "export default async function (message, context) { message.setHeader('X-Partner', (await context.secureStore.getUserCredential('Short')).password); message.setHeader('X-Plain', 'visible'); }\n",
    },
    // The script's header is sent to a receiver that echoes it.
    echoed: { 'flow.yaml': `sender: { path: /http/echoed }\nsteps:\n  - script: put.mjs\n  - http: { address: "${echo.url}/x", requestHeaders: [X-Partner] }\n`, 'put.mjs': put },
    // A script sets it where HTTP cannot carry it: the INVALID_REPLY text quotes the status.
    statused: {
      'flow.yaml': 'sender: { path: /http/statused }\nsteps:\n  - script: status.mjs\n',
      'status.mjs': "export default async function (message, context) { message.status = (await context.secureStore.getUserCredential('Partner')).password; }\n",
    },
    // A body that cannot be JSON, whose error names the key holding the secret.
    circular: {
      'flow.yaml': 'sender: { path: /http/circular }\nsteps:\n  - script: circular.mjs\n',
      'circular.mjs': "export default async function (message, context) { const key = (await context.secureStore.getUserCredential('Partner')).password; const body = {}; body[key] = body; message.setBody(body); }\n",
    },
    // Another script quotes it in its error.
    quoted: {
      'flow.yaml': 'sender: { path: /http/quoted }\nsteps:\n  - script: put.mjs\n  - script: quote.mjs\n',
      'put.mjs': put,
      'quote.mjs': "export default function (message) { throw new Error('partner said no to ' + message.getHeader('X-Partner')); }\n",
    },
  });
  const credential = async (name: string, secret: string) => {
    const created = await fetch(`${iflow.url}/api/v1/credentials`, {
      method: 'POST',
      headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
      body: JSON.stringify({ name, type: 'basic', user: 'partner', password: secret }),
    });
    assert.equal(created.status, 201);
  };
  await credential('Partner', password);
  const send = (path: string) => fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth } });

  for (const round of ['first message', 'a later message, the password kept from the first']) {
    const kept = await send('/http/kept');
    assert.equal(kept.status, 200, round);
    assert.equal(kept.headers.get('x-plain'), 'visible');
    assert.equal(kept.headers.get('x-partner'), null, `a header holding the password is not replied, whatever its name (${round})`);
  }

  const echoed = await send('/http/echoed');
  assert.equal(echo.received.at(-1)?.headers['x-partner'], `pw="${password}"`, "the receiver got it: it was the flow's to send");
  assert.equal(echoed.status, 502);
  const echoedError = ((await echoed.json()) as ErrorReply).error.message;
  assert.ok(!leaks(echoedError), echoedError);
  assert.match(echoedError, /"got":"pw=\\"\[Redacted\]\\""/, 'the JSON-escaped echo is cleaned');

  const quoted = await send('/http/quoted');
  assert.equal(quoted.status, 500);
  const quotedError = ((await quoted.json()) as ErrorReply).error.message;
  assert.ok(!leaks(quotedError), quotedError);
  assert.match(quotedError, /partner said no to pw="\[Redacted\]"$/);

  const statused = await send('/http/statused');
  assert.equal(statused.status, 500);
  const statusedError = ((await statused.json()) as ErrorReply).error;
  assert.equal(statusedError.code, 'INVALID_REPLY');
  assert.equal(statusedError.message, 'the final message cannot be sent as an HTTP reply: status [Redacted] is not between 200 and 599');
  const circular = await send('/http/circular');
  assert.equal(circular.status, 500);
  const circularError = ((await circular.json()) as ErrorReply).error;
  assert.equal(circularError.code, 'INVALID_REPLY');
  assert.ok(!leaks(circularError.message) && circularError.message.includes('[Redacted]'), circularError.message);

  // A secret longer than the 64 characters quoted is taken out before the cut, not missed as a prefix.
  await fetch(`${iflow.url}/api/v1/credentials/Partner`, {
    method: 'PUT',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Partner', type: 'basic', user: 'partner', password: longPassword }),
  });
  const statusedLong = ((await (await send('/http/statused')).json()) as ErrorReply).error.message;
  assert.equal(statusedLong, 'the final message cannot be sent as an HTTP reply: status [Redacted] is not between 200 and 599');
  await fetch(`${iflow.url}/api/v1/credentials/Partner`, {
    method: 'PUT',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Partner', type: 'basic', user: 'partner', password }),
  });

  // A password of 3 characters is not cleaned out of texts (it would match ordinary words), but a header that is
  // exactly it is still held back.
  await credential('Short', 'q7z');
  const short = await send('/http/short');
  assert.equal(short.status, 200);
  assert.equal(short.headers.get('x-plain'), 'visible');
  assert.equal(short.headers.get('x-partner'), null);

  for (const path of ['/http/echoed', '/http/quoted', '/http/statused', '/http/circular']) {
    const messageId = (await waitFor(() => iflow.logs.records().find((r) => r.msg === 'message failed' && String(r.error && (r.error as { message: string }).message).length > 0 && r.flow === path.slice(6)), { what: `the failure of ${path}` })).messageId as string;
    const record = await waitFor(() => iflow.app.store.messageLogs.get(messageId), { what: 'the message log' });
    assert.ok(!leaks(JSON.stringify(record)), `not in the message log (${path})`);
  }
  assert.ok(!leaks(iflow.logs.text), 'not in the log');
});

test('a token an http step renewed after a 401 is held back too, when the receiver echoes it in a reply header', async (t) => {
  const entra = await startFakeEntra();
  t.after(() => entra.close());
  let calls = 0;
  // Refuses the first token; then answers 200 echoing the Authorization it got.
  const receiver = await startReceiver((request) => (calls++ === 0 ? { status: 401 } : { status: 200, headers: { 'x-seen': String(request.headers.authorization) }, body: { ok: true } }));
  t.after(() => receiver.close());
  const iflow = await startIflowWithFlows(t, {
    renew: {
      'flow.yaml': `sender: { path: /http/renew }\nsteps:\n  - script: token.mjs\n  - http: { address: "${receiver.url}/x", requestHeaders: [Authorization] }\n`,
      'token.mjs': "export default async function (message, context) { const token = await context.secureStore.getAccessToken('Microsoft365_Mail'); message.setHeader('Authorization', 'Bearer ' + token.accessToken); }\n",
    },
  });
  wire(iflow, entra);
  await createAndAuthorize(iflow, entra);
  const answer = await fetch(`${iflow.url}/http/renew`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  assert.equal(answer.status, 200, await answer.text());
  assert.equal(calls, 2, 'refused once, renewed, sent again');
  assert.match(String(receiver.received[1].headers.authorization), /^Bearer .+/);
  assert.notEqual(receiver.received[1].headers.authorization, receiver.received[0].headers.authorization, 'a renewed token');
  assert.equal(answer.headers.get('x-seen'), null);
});

test("an http step's own auth: (Basic, a token, a token renewed after a 401) is held back when the receiver reflects it", async (t) => {
  const entra = await startFakeEntra();
  t.after(() => entra.close());
  const password = 'Reflected-pass-77';
  let calls = 0;
  // /renew refuses its first request; every answer reflects the Authorization it got, in a header and in the body.
  const receiver = await startReceiver((request) => {
    if (request.url === '/renew' && calls++ === 0) return { status: 401 };
    if (request.url === '/fails') return { status: 500, body: `you sent ${String(request.headers.authorization)}` };
    return { status: 200, headers: { 'x-seen': String(request.headers.authorization), 'x-plain': 'visible', 'x-env': 'test-system' } };
  });
  t.after(() => receiver.close());
  const step = (name: string, path: string, auth: string) => ({ 'flow.yaml': `sender: { path: /http/${name} }\nsteps:\n  - http: { address: "${receiver.url}${path}", auth: { ${auth} } }\n` });
  const iflow = await startIflowWithFlows(t, {
    basic: step('basic', '/ok', 'basic: Partner'),
    basicfails: step('basicfails', '/fails', 'basic: Partner'),
    bearer: step('bearer', '/ok', 'oauth2AuthorizationCode: Microsoft365_Mail'),
    renew: step('renew', '/renew', 'oauth2AuthorizationCode: Microsoft365_Mail'),
    short: step('short', '/ok', 'basic: Short'),
  });
  wire(iflow, entra);
  await createAndAuthorize(iflow, entra);
  const created = await fetch(`${iflow.url}/api/v1/credentials`, {
    method: 'POST',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Partner', type: 'basic', user: 'partner', password }),
  });
  assert.equal(created.status, 201);
  const send = (name: string) => fetch(`${iflow.url}/http/${name}`, { method: 'POST', headers: { authorization: iflow.adminAuth } });

  for (const name of ['basic', 'bearer', 'renew']) {
    const answer = await send(name);
    assert.equal(answer.status, 200, name);
    assert.match(String(receiver.received.at(-1)?.headers.authorization), /^(Basic|Bearer) .+/, `the receiver got it (${name})`);
    assert.equal(answer.headers.get('x-plain'), 'visible', name);
    assert.equal(answer.headers.get('x-seen'), null, `the reflected Authorization is not replied (${name})`);
  }
  assert.equal(calls, 2, 'the renewing flow was refused once and sent again');
  // A short password alone is not guarded: an ordinary header that holds the same word still goes back.
  const short = await fetch(`${iflow.url}/api/v1/credentials`, {
    method: 'POST',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Short', type: 'basic', user: 'partner', password: 'test' }),
  });
  assert.equal(short.status, 201);
  const shortAnswer = await send('short');
  assert.equal(shortAnswer.status, 200);
  assert.equal(shortAnswer.headers.get('x-env'), 'test-system');
  assert.equal(shortAnswer.headers.get('x-seen'), null, 'the reflected Authorization is still held back');

  const failed = await send('basicfails');
  assert.equal(failed.status, 502);
  const { message } = ((await failed.json()) as ErrorReply).error;
  assert.equal(message.replace(/:\d+/, ':<port>'), 'receiver 127.0.0.1:<port> answered 500 Internal Server Error: you sent [Redacted]');
  assert.ok(!iflow.logs.text.includes(password) && !iflow.logs.text.includes(Buffer.from(`partner:${password}`).toString('base64')), 'not in the log');
});

test('what the secure store gave a script is taken out of the lines it logs through context.log, in every field and form', async (t) => {
  const password = 'Logged-pass"word-41';
  const iflow = await startIflowWithFlows(t, {
    chatty: {
      'flow.yaml': 'sender: { path: /http/chatty }\nsteps:\n  - script: log.mjs\n',
      'log.mjs': `export default async function (message, context) {
  const { password } = await context.secureStore.getUserCredential('Partner');
  context.log.info({ pw: password, nested: { deeper: [password] } }, 'logging ' + password);
  context.log.warn('interpolated %s', password);
  context.log.error(new Error('failed with ' + password));
  context.log.child({ part: 'child' }).info('child ' + password);
  context.log.info('nothing secret here');
  // A short secret that is also in the line's numbers: only string values are cleaned, so the line stays JSON.
  const { password: digits } = await context.secureStore.getUserCredential('Digits');
  context.log.info({ count: Number(digits + '1'), flag: true }, 'year ' + digits);
  // The secret as a key, and as a number.
  context.log.info({ cache: { [password]: 'partner' }, account: Number(digits) }, 'keyed');
}
`,
    },
  });
  const created = await fetch(`${iflow.url}/api/v1/credentials`, {
    method: 'POST',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Partner', type: 'basic', user: 'partner', password }),
  });
  assert.equal(created.status, 201);
  const digits = await fetch(`${iflow.url}/api/v1/credentials`, {
    method: 'POST',
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Digits', type: 'basic', user: 'digits', password: '2026' }),
  });
  assert.equal(digits.status, 201);
  const answer = await fetch(`${iflow.url}/http/chatty`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  assert.equal(answer.status, 200);
  const messageId = answer.headers.get('sap_messageprocessinglogid');
  const lines = await waitFor(() => {
    const found = iflow.logs.records().filter((r) => r.messageId === messageId && r.msg !== 'message completed');
    return found.length >= 7 ? found : undefined;
  }, { what: "the script's seven log lines" });
  const escaped = JSON.stringify(password).slice(1, -1);
  assert.ok(!iflow.logs.text.includes(password) && !iflow.logs.text.includes(escaped), 'the password is in no line, raw or JSON-escaped');
  assert.deepEqual(
    lines.map((r) => r.msg),
    ['logging [Redacted]', 'interpolated [Redacted]', 'failed with [Redacted]', 'child [Redacted]', 'nothing secret here', 'year [Redacted]', 'keyed'],
  );
  assert.deepEqual(lines[6].cache, { '[Redacted]': 'partner' });
  assert.equal(lines[6].account, '[Redacted]');
  assert.equal(lines[5].count, 20261, 'a number holding the digits of a secret is not the secret: left as it is');
  assert.equal(lines[5].flag, true);
  assert.equal(typeof lines[5].time, 'number');
  assert.deepEqual(lines[0].nested, { deeper: ['[Redacted]'] });
  assert.equal(lines[3].part, 'child');
  assert.match(String((lines[2].err as { stack: string }).stack), /^Error: failed with \[Redacted\]\n/);
});

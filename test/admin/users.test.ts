import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, ADMIN_USER, basicAuth, startIflow, waitFor, type RunningIflow } from '../support/iflow.ts';
import { hashPassword } from '../../src/security/passwords.ts';

interface UserView {
  name: string;
  roles: string[];
  createdAt: string;
  updatedAt: string;
}
interface ErrorBody {
  error: { code: string; message: string };
}
interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** Calls the iflow API; `auth` null sends no Authorization header, left out sends the admin's. */
async function call(iflow: RunningIflow, method: string, path: string, options: { auth?: string | null; body?: unknown; rawBody?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const auth = options.auth === undefined ? iflow.adminAuth : options.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | undefined;
  if (options.rawBody !== undefined || options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = options.rawBody ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${iflow.url}${path}`, { method, headers, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** The answer must be the error contract `{ error: { code, message } }` with this status and code. */
function assertError(answer: Answer, status: number, code: string): ErrorBody {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.headers.get('content-type')?.split(';')[0], 'application/json');
  const body = answer.json as ErrorBody;
  assert.equal(typeof body, 'object');
  assert.equal(typeof body.error, 'object', answer.text);
  assert.equal(body.error.code, code, answer.text);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.ok(!/\n\s+at /.test(answer.text), 'no stack trace');
  return body;
}

/** Nothing that looks like a password or its hash may ever be in an answer. */
function assertNoSecrets(answer: Answer, ...passwords: string[]) {
  assert.ok(!/password|hash|scrypt/i.test(answer.text.replace(/"message":"[^"]*"/g, '')), `secret-looking field in ${answer.text}`);
  for (const password of passwords) assert.ok(!answer.text.includes(password), `password in ${answer.text}`);
}

function assertUserView(value: unknown, name: string, roles: string[]): UserView {
  const user = value as UserView;
  assert.deepEqual(Object.keys(user).sort(), ['createdAt', 'name', 'roles', 'updatedAt']);
  assert.equal(user.name, name);
  assert.deepEqual(user.roles, roles);
  assert.ok(!Number.isNaN(Date.parse(user.createdAt)));
  assert.ok(!Number.isNaN(Date.parse(user.updatedAt)));
  return user;
}

describe('the users API', () => {
  let iflow: RunningIflow;
  const monitorAuth = basicAuth('watcher', 'watcher-password-1');
  const senderAuth = basicAuth('client', 'client-password-1');

  before(async () => {
    iflow = await startIflow();
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'watcher', password: 'watcher-password-1', roles: ['monitor'] } })).status, 201);
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'client', password: 'client-password-1', roles: ['ESBMessaging.send'] } })).status, 201);
  });
  after(() => iflow.close());

  test('without valid credentials every route answers 401 with a Basic challenge', async () => {
    const routes = [
      ['GET', '/api/v1/users'],
      ['GET', '/api/v1/users/watcher'],
      ['POST', '/api/v1/users', { name: 'intruder', password: 'intruder-password', roles: ['admin'] }],
      ['PUT', `/api/v1/users/${ADMIN_USER}`, { password: 'taken-over-password' }],
      ['DELETE', '/api/v1/users/watcher'],
    ] as const;
    const attempts: [string, string, unknown, string | null][] = routes.map(([method, path, body]) => [method, path, body, null]);
    for (const auth of [basicAuth(ADMIN_USER, 'wrong-password'), basicAuth('nobody', ADMIN_PASSWORD), basicAuth(ADMIN_USER, ''), 'Bearer some-token', 'Basic !!!', iflow.adminAuth.toLowerCase()]) {
      attempts.push(['GET', '/api/v1/users', undefined, auth], ['PUT', `/api/v1/users/${ADMIN_USER}`, { password: 'taken-over-password' }, auth]);
    }
    for (const [method, path, body, auth] of attempts) {
      const answer = await call(iflow, method, path, { auth, body });
      assertError(answer, 401, 'UNAUTHORIZED');
      assert.match(answer.headers.get('www-authenticate') ?? '', /^Basic realm="iflow"/, `${method} ${path}`);
    }
    assert.equal(await iflow.app.store.users.get('intruder'), undefined);
    assert.equal((await call(iflow, 'GET', '/api/v1/users/watcher')).status, 200, 'nothing was deleted');

    // The message says what was wrong with the request, never whether the user exists.
    const messageFor = async (auth: string | null) => (assertError(await call(iflow, 'GET', '/api/v1/users', { auth }), 401, 'UNAUTHORIZED')).error.message;
    assert.match(await messageFor(null), /^Authentication required: send HTTP Basic credentials/);
    assert.match(await messageFor('Bearer some-token'), /^Only HTTP Basic credentials of an iflow user are accepted/);
    const wrongPassword = await messageFor(basicAuth(ADMIN_USER, 'wrong-password'));
    assert.equal(wrongPassword, 'The HTTP Basic credentials were not accepted: unknown user or wrong password');
    assert.equal(await messageFor(basicAuth('nobody', 'wrong-password')), wrongPassword, 'an unknown user reads the same as a wrong password');
    assert.equal((await call(iflow, 'GET', '/api/v1/users')).status, 200, 'the admin password was not changed');
  });

  test('users without the admin role get 403', async () => {
    for (const auth of [monitorAuth, senderAuth]) {
      for (const [method, path, body] of [
        ['GET', '/api/v1/users'],
        ['GET', '/api/v1/users/watcher'],
        ['POST', '/api/v1/users', { name: 'intruder', password: 'intruder-password', roles: ['admin'] }],
        ['PUT', '/api/v1/users/watcher', { roles: ['admin'] }],
        ['DELETE', '/api/v1/users/client'],
      ] as const) {
        const answer = await call(iflow, method, path, { auth, body });
        assertError(answer, 403, 'FORBIDDEN');
        assert.equal(answer.headers.get('www-authenticate'), null);
      }
    }
    assert.equal(await iflow.app.store.users.get('intruder'), undefined);
    assert.deepEqual((await iflow.app.store.users.get('watcher'))?.roles, ['monitor']);
    assert.ok(await iflow.app.store.users.get('client'));
  });

  test(
    'credentials are checked before the request body is validated',
    async () => {
      assertError(await call(iflow, 'POST', '/api/v1/users', { auth: null, body: { unexpected: true } }), 401, 'UNAUTHORIZED');
      assertError(await call(iflow, 'POST', '/api/v1/users', { auth: monitorAuth, body: { unexpected: true } }), 403, 'FORBIDDEN');
      assertError(await call(iflow, 'GET', '/api/v1/users/not%20a%20name', { auth: null }), 401, 'UNAUTHORIZED');
      assertError(await call(iflow, 'PUT', '/api/v1/users/watcher', { auth: monitorAuth, body: {} }), 403, 'FORBIDDEN');
    },
  );

  test('the admin creates, lists, reads, changes and deletes a user; no answer holds a password or hash', async () => {
    const created = await call(iflow, 'POST', '/api/v1/users', { body: { name: 'erin.o-k_1@example', password: 'erin-first-password', roles: ['ESBMessaging.send', 'monitor'] } });
    assert.equal(created.status, 201, created.text);
    assertNoSecrets(created, 'erin-first-password');
    const view = assertUserView(created.json, 'erin.o-k_1@example', ['ESBMessaging.send', 'monitor']);
    assert.equal(view.createdAt, view.updatedAt);

    const list = await call(iflow, 'GET', '/api/v1/users');
    assert.equal(list.status, 200);
    assertNoSecrets(list, 'erin-first-password', ADMIN_PASSWORD, 'watcher-password-1', 'client-password-1');
    const users = list.json as UserView[];
    assert.ok(Array.isArray(users));
    for (const user of users) assert.deepEqual(Object.keys(user).sort(), ['createdAt', 'name', 'roles', 'updatedAt']);
    const names = users.map((u) => u.name);
    for (const name of [ADMIN_USER, 'watcher', 'client', 'erin.o-k_1@example']) assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    assert.deepEqual(users.find((u) => u.name === ADMIN_USER)?.roles, ['admin']);

    const read = await call(iflow, 'GET', '/api/v1/users/erin.o-k_1@example');
    assert.equal(read.status, 200);
    assertNoSecrets(read, 'erin-first-password');
    assert.deepEqual(read.json, view);

    // updatedAt has millisecond resolution: let the clock move on before changing the user.
    const createdAt = Date.parse(view.updatedAt as string);
    await waitFor(() => Date.now() > createdAt + 1, { what: 'the clock to pass the creation time' });
    const changed = await call(iflow, 'PUT', '/api/v1/users/erin.o-k_1@example', { body: { roles: ['monitor', 'monitor', 'Other.Role'] } });
    assert.equal(changed.status, 200, changed.text);
    assertNoSecrets(changed, 'erin-first-password');
    const changedView = assertUserView(changed.json, 'erin.o-k_1@example', ['monitor', 'Other.Role']);
    assert.equal(changedView.createdAt, view.createdAt);
    assert.ok(changedView.updatedAt > view.updatedAt, 'updatedAt moves on');
    assert.deepEqual((await call(iflow, 'GET', '/api/v1/users/erin.o-k_1@example')).json, changedView);

    const newPassword = await call(iflow, 'PUT', '/api/v1/users/erin.o-k_1@example', { body: { password: 'erin-second-password' } });
    assert.equal(newPassword.status, 200, newPassword.text);
    assertNoSecrets(newPassword, 'erin-first-password', 'erin-second-password');
    assertUserView(newPassword.json, 'erin.o-k_1@example', ['monitor', 'Other.Role']);

    const deleted = await call(iflow, 'DELETE', '/api/v1/users/erin.o-k_1@example');
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, '');
    assertError(await call(iflow, 'GET', '/api/v1/users/erin.o-k_1@example'), 404, 'NOT_FOUND');
    assert.ok(!((await call(iflow, 'GET', '/api/v1/users')).json as UserView[]).some((u) => u.name === 'erin.o-k_1@example'));
    assert.equal(await iflow.app.store.users.get('erin.o-k_1@example'), undefined);
  });

  test('duplicate roles are stored once', async () => {
    const created = await call(iflow, 'POST', '/api/v1/users', { body: { name: 'dup-roles', password: 'dup-roles-password', roles: ['monitor', 'monitor', 'a.b'] } });
    assert.equal(created.status, 201, created.text);
    assertUserView(created.json, 'dup-roles', ['monitor', 'a.b']);
    assert.deepEqual((await iflow.app.store.users.get('dup-roles'))?.roles, ['monitor', 'a.b']);
  });

  test('passwords are stored as scrypt hashes, and a new password gets a new hash', async () => {
    const password = 'frank-password-one';
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'frank', password, roles: [] } })).status, 201);
    const stored = await iflow.app.store.users.get('frank');
    assert.ok(stored);
    assert.match(stored.passwordHash, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.ok(!stored.passwordHash.includes(password));
    assert.deepEqual(stored.roles, []);

    assert.equal((await call(iflow, 'PUT', '/api/v1/users/frank', { body: { password: 'frank-password-two' } })).status, 200);
    const after = await iflow.app.store.users.get('frank');
    assert.match(after?.passwordHash ?? '', /^scrypt\$/);
    assert.notEqual(after?.passwordHash, stored.passwordHash);

    // Changing only the roles keeps the hash.
    assert.equal((await call(iflow, 'PUT', '/api/v1/users/frank', { body: { roles: ['monitor'] } })).status, 200);
    assert.equal((await iflow.app.store.users.get('frank'))?.passwordHash, after?.passwordHash);
  });

  test('a body that is not JSON is 415 UNSUPPORTED_MEDIA_TYPE in the error contract, not a Fastify code', async () => {
    const response = await fetch(`${iflow.url}/api/v1/users`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'application/xml' }, body: '<user/>' });
    const text = await response.text();
    const body = assertError({ status: response.status, headers: response.headers, text, json: JSON.parse(text) }, 415, 'UNSUPPORTED_MEDIA_TYPE');
    assert.match(body.error.message, /application\/xml.*send application\/json/);
    assert.equal((await iflow.app.store.users.list()).some((user) => user.name === 'user'), false);
  });

  test('bodies the API cannot take are refused in words, and nothing is stored: not UTF-8, text, __proto__, thousands of unknown keys, dot names', async () => {
    const before = await iflow.app.store.users.list();
    const send = (body: Buffer | string, type = 'application/json') => fetch(`${iflow.url}/api/v1/users`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': type }, body });
    const answer = async (response: Response): Promise<Answer> => {
      const text = await response.text();
      return { status: response.status, headers: response.headers, text, json: JSON.parse(text) };
    };
    const notUtf8 = Buffer.concat([Buffer.from('{"name":"latin","password":"'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from('","roles":[]}')]);
    assert.equal(assertError(await answer(await send(notUtf8)), 400, 'INVALID_JSON').error.message, 'Malformed JSON body: it is not UTF-8');
    assertError(await answer(await send(JSON.stringify({ name: 'plain', password: 'plain-password-1', roles: [] }), 'text/plain')), 415, 'UNSUPPORTED_MEDIA_TYPE');
    const latin = assertError(await answer(await send(JSON.stringify({ name: 'latin', password: 'latin-password-1', roles: [] }), 'application/json; charset=latin1')), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(latin.error.message, 'Content-Type charset latin1 is not accepted here: send application/json in UTF-8');
    for (const type of ['application/json; charset="UTF-8"', 'application/json;charset=utf8', 'application/json; charset=US-ASCII']) {
      assert.equal((await send(JSON.stringify({ name: 'plain', password: 'x' }), type)).status, 400, `${type}: read, and refused for its password only`);
    }
    const proto = assertError(await answer(await send('{"name":"proto","password":"proto-password-1","roles":[],"__proto__":{"x":1}}')), 400, 'INVALID_JSON');
    assert.match(proto.error.message, /keys named "__proto__"/);

    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    const wide = await answer(await send(JSON.stringify({ name: 'wide', password: 'wide-password-1', roles: [], ...many })));
    const error = assertError(wide, 400, 'BAD_REQUEST') as ErrorBody & { error: { details: unknown[] } };
    assert.match(error.error.message, /\(unknown: "k0", .*"k9" and 4990 more\)$/);
    assert.ok(error.error.details.length <= 100);
    assert.ok(wide.text.length < 50_000, `${wide.text.length} bytes`);
    const longKey = await answer(await send(JSON.stringify({ name: 'long', password: 'long-password-1', roles: [], ['k'.repeat(100_000)]: 1 })));
    assertError(longKey, 400, 'BAD_REQUEST');
    assert.ok(longKey.text.length < 2_000, `${longKey.text.length} bytes`);

    for (const name of ['.', '..', '...']) assertError(await call(iflow, 'POST', '/api/v1/users', { body: { name, password: 'dots-password-1', roles: [] } }), 400, 'BAD_REQUEST');
    const deep = assertError(await answer(await send(`{"name":"deep","password":"deep-password-1","roles":[],"x":${'['.repeat(3000)}${']'.repeat(3000)}}`)), 400, 'INVALID_JSON');
    assert.equal(deep.error.message, 'Malformed JSON body: it nests deeper than 64 levels');
    assert.deepEqual(await iflow.app.store.users.list(), before, 'nothing stored');
    // A UTF-8 byte order mark before the JSON is fine.
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ name: 'bom', password: 'bom-password-1', roles: [] }))]);
    assert.equal((await send(bom)).status, 201);
  });

  test('an empty body with a JSON Content-Type is no body for a DELETE, and an error for a POST or PUT', async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'emptied', password: 'emptied-password', roles: ['monitor'] } })).status, 201);
    for (const method of ['POST', 'PUT']) {
      const path = method === 'POST' ? '/api/v1/users' : '/api/v1/users/emptied';
      const empty = assertError(await call(iflow, method, path, { rawBody: '' }), 400, 'INVALID_JSON');
      assert.equal(empty.error.message, 'The JSON body is empty');
    }
    assert.deepEqual((await iflow.app.store.users.get('emptied'))?.roles, ['monitor'], 'left as it was');
    // As curl -X DELETE -H 'Content-Type: application/json' sends it.
    const deleted = await call(iflow, 'DELETE', '/api/v1/users/emptied', { rawBody: '' });
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(await iflow.app.store.users.get('emptied'), undefined);
    // No body, so no charset to read it in: the request is answered for what it asks.
    const none = await fetch(`${iflow.url}/api/v1/users/emptied`, { method: 'DELETE', headers: { authorization: iflow.adminAuth, 'content-type': 'application/json; charset=ISO-8859-1' } });
    assert.equal(none.status, 404);
  });

  test('a Basic password that is not UTF-8 never matches, not even the password of U+FFFD it would decode to', async () => {
    const replacement = '\ufffd'.repeat(8);
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'fffd', password: replacement, roles: ['monitor'] } })).status, 201);
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth: basicAuth('fffd', replacement) })).status, 200, 'the password as set works');
    const invalid = `Basic ${Buffer.concat([Buffer.from('fffd:'), Buffer.from([0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe])]).toString('base64')}`;
    assertError(await call(iflow, 'GET', '/api/v1/flows', { auth: invalid }), 401, 'UNAUTHORIZED');
  });

  test('bad names, short or long passwords, bad roles and unknown properties are 400 with the error contract', async () => {
    const good = { name: 'gina', password: 'gina-password-1', roles: ['monitor'] };
    const badCreates: unknown[] = [
      { ...good, name: '' },
      { ...good, name: 'has space' },
      { ...good, name: 'slash/name' },
      { ...good, name: 'ümlaut' },
      { ...good, name: 'colon:name' },
      { ...good, name: 'x'.repeat(65) },
      { ...good, password: 'short77' },
      { ...good, password: '' },
      { ...good, password: 'p'.repeat(257) },
      { ...good, password: 'gina-password-1\n' },
      { ...good, password: 'gina\u0000password' },
      { ...good, password: 'gina\tpassword' },
      { ...good, password: 'gina\u0085password' },
      { ...good, roles: ['bad role'] },
      { ...good, roles: [''] },
      { ...good, roles: Array.from({ length: 33 }, (_, i) => `role${i}`) },
      { ...good, admin: true },
      { ...good, passwordHash: 'scrypt$1$1$1$x$y' },
      { name: good.name, password: good.password },
      { name: good.name, roles: good.roles },
      { password: good.password, roles: good.roles },
      [],
      'gina',
    ];
    for (const body of badCreates) {
      const answer = await call(iflow, 'POST', '/api/v1/users', { body });
      assertError(answer, 400, 'BAD_REQUEST');
      assert.ok(!answer.text.includes(good.password), 'the error does not echo the password');
    }
    assert.equal(await iflow.app.store.users.get('gina'), undefined);
    assert.equal(await iflow.app.store.users.get('x'.repeat(65)), undefined);

    // A name of exactly 64 characters and a password of exactly 8 are fine.
    const longest = 'n'.repeat(64);
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: longest, password: '8chars!!', roles: [] } })).status, 201);
    assert.equal((await call(iflow, 'DELETE', `/api/v1/users/${longest}`)).status, 204);

    const malformed = await call(iflow, 'POST', '/api/v1/users', { rawBody: '{"name": "gina", ' });
    assertError(malformed, 400, 'INVALID_JSON');

    const watcherHash = (await iflow.app.store.users.get('watcher'))?.passwordHash;
    for (const body of [{}, { password: 'short' }, { password: 'long-enough-password\r\n' }, { password: 'long-enough\u007fpassword' }, { roles: ['bad role'] }, { roles: ['monitor'], name: 'renamed' }, { password: 'long-enough-password', extra: 1 }]) {
      assertError(await call(iflow, 'PUT', '/api/v1/users/watcher', { body }), 400, 'BAD_REQUEST');
    }
    assert.deepEqual((await iflow.app.store.users.get('watcher'))?.roles, ['monitor']);
    assert.equal((await iflow.app.store.users.get('watcher'))?.passwordHash, watcherHash, 'a refused password change leaves the hash');
    const renamed = assertError(await call(iflow, 'PUT', '/api/v1/users/watcher', { body: { roles: ['monitor'], name: 'renamed' } }), 400, 'BAD_REQUEST');
    assert.match(renamed.error.message, /must NOT have additional properties \(unknown: "name"\)$/, 'the message names the property');

    for (const method of ['GET', 'DELETE'] as const) {
      assertError(await call(iflow, method, '/api/v1/users/has%20space'), 400, 'BAD_REQUEST');
      assertError(await call(iflow, method, `/api/v1/users/${'x'.repeat(65)}`), 400, 'BAD_REQUEST');
    }
    assertError(await call(iflow, 'PUT', '/api/v1/users/has%20space', { body: { roles: [] } }), 400, 'BAD_REQUEST');
  });

  test('a duplicate name is 409 and leaves the existing user alone', async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'hank', password: 'hank-password-1', roles: ['monitor'] } })).status, 201);
    const before = await iflow.app.store.users.get('hank');
    const answer = await call(iflow, 'POST', '/api/v1/users', { body: { name: 'hank', password: 'other-password-1', roles: ['admin'] } });
    assertError(answer, 409, 'CONFLICT');
    assertNoSecrets(answer, 'other-password-1');
    assert.deepEqual(await iflow.app.store.users.get('hank'), before);
    assertError(await call(iflow, 'POST', '/api/v1/users', { body: { name: ADMIN_USER, password: 'other-password-1', roles: ['admin'] } }), 409, 'CONFLICT');
    // The admin's password did not change.
    assert.equal((await call(iflow, 'GET', '/api/v1/users')).status, 200);
  });

  test('an unknown user is 404 for read, change and delete', async () => {
    assertError(await call(iflow, 'GET', '/api/v1/users/nobody'), 404, 'NOT_FOUND');
    assertError(await call(iflow, 'PUT', '/api/v1/users/nobody', { body: { password: 'nobody-password' } }), 404, 'NOT_FOUND');
    assertError(await call(iflow, 'PUT', '/api/v1/users/nobody', { body: { roles: ['admin'] } }), 404, 'NOT_FOUND');
    assertError(await call(iflow, 'DELETE', '/api/v1/users/nobody'), 404, 'NOT_FOUND');
    assert.equal(await iflow.app.store.users.get('nobody'), undefined);
    // A name far too long for a path: said without quoting it back.
    const long = assertError(await call(iflow, 'GET', `/api/v1/users/${'n'.repeat(150)}`), 414, 'URI_TOO_LONG');
    assert.equal(long.error.message, 'A part of the path is longer than 100 characters');
  });

  test('after a password change the old password stops working at once and the new one works', async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'ivy', password: 'ivy-old-password', roles: ['admin'] } })).status, 201);
    const oldAuth = basicAuth('ivy', 'ivy-old-password');
    const newAuth = basicAuth('ivy', 'ivy-new-password');
    // Logged in (and so cached) with the old password.
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth: oldAuth })).status, 200);
    assert.equal((await call(iflow, 'GET', '/api/v1/users/ivy', { auth: oldAuth })).status, 200);

    assert.equal((await call(iflow, 'PUT', '/api/v1/users/ivy', { body: { password: 'ivy-new-password' } })).status, 200);
    assertError(await call(iflow, 'GET', '/api/v1/users', { auth: oldAuth }), 401, 'UNAUTHORIZED');
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth: newAuth })).status, 200);

    // A user may change their own password too; their old login stops working just the same.
    assert.equal((await call(iflow, 'PUT', '/api/v1/users/ivy', { auth: newAuth, body: { password: 'ivy-third-password' } })).status, 200);
    assertError(await call(iflow, 'GET', '/api/v1/users', { auth: newAuth }), 401, 'UNAUTHORIZED');
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth: basicAuth('ivy', 'ivy-third-password') })).status, 200);
  });

  test('a role change takes effect at once, even for a cached login', async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'jack', password: 'jack-password-1', roles: ['admin'] } })).status, 201);
    const auth = basicAuth('jack', 'jack-password-1');
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth })).status, 200);
    assert.equal((await call(iflow, 'PUT', '/api/v1/users/jack', { body: { roles: ['monitor'] } })).status, 200);
    assertError(await call(iflow, 'GET', '/api/v1/users', { auth }), 403, 'FORBIDDEN');
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth })).status, 200, 'still a monitor');
    assert.equal((await call(iflow, 'PUT', '/api/v1/users/jack', { body: { roles: ['admin'] } })).status, 200);
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth })).status, 200);
  });

  test("after a user is deleted their cached login stops working", async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'kim', password: 'kim-password-1', roles: ['monitor'] } })).status, 201);
    const auth = basicAuth('kim', 'kim-password-1');
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth })).status, 200);
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth })).status, 200);
    assert.equal((await call(iflow, 'DELETE', '/api/v1/users/kim')).status, 204);
    assertError(await call(iflow, 'GET', '/api/v1/flows', { auth }), 401, 'UNAUTHORIZED');

    // Re-creating the name with another password does not revive the old one.
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'kim', password: 'kim-password-2', roles: ['monitor'] } })).status, 201);
    assertError(await call(iflow, 'GET', '/api/v1/flows', { auth }), 401, 'UNAUTHORIZED');
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth: basicAuth('kim', 'kim-password-2') })).status, 200);
  });

  test("a change to one user leaves other users' cached logins alone", async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'lena', password: 'lena-password-1', roles: ['monitor'] } })).status, 201);
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'mo', password: 'mo-password-1', roles: ['monitor'] } })).status, 201);
    const lenaOld = basicAuth('lena', 'lena-password-1');
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth: lenaOld })).status, 200);
    // Her password changes in the store behind the API's back: only a dropped cache would show it.
    const lena = (await iflow.app.store.users.get('lena'))!;
    assert.ok(await iflow.app.store.users.update({ ...lena, passwordHash: await hashPassword('lena-password-2') }));

    assert.equal((await call(iflow, 'PUT', '/api/v1/users/mo', { body: { password: 'mo-password-2' } })).status, 200);
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth: lenaOld })).status, 200, "mo's change did not drop lena's login");

    assert.equal((await call(iflow, 'PUT', '/api/v1/users/lena', { body: { roles: ['monitor'] } })).status, 200);
    assertError(await call(iflow, 'GET', '/api/v1/flows', { auth: lenaOld }), 401, 'UNAUTHORIZED');
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth: basicAuth('lena', 'lena-password-2') })).status, 200);
  });

  test('no log line holds a password sent to the users API or in a Basic header', () => {
    for (const secret of [ADMIN_PASSWORD, 'watcher-password-1', 'erin-first-password', 'erin-second-password', 'ivy-old-password', 'ivy-new-password', 'kim-password-1', 'taken-over-password', 'intruder-password']) {
      assert.ok(!iflow.logs.text.includes(secret), `"${secret}" in the logs`);
    }
    assert.ok(!iflow.logs.text.includes(iflow.adminAuth.slice('Basic '.length)), 'the admin Basic header in the logs');
    assert.ok(!/scrypt\$/.test(iflow.logs.text), 'a password hash in the logs');
  });
});

describe('the last administrator', () => {
  let iflow: RunningIflow;
  before(async () => {
    iflow = await startIflow();
  });
  after(() => iflow.close());

  test('can neither lose the admin role nor be deleted', async () => {
    const demote = await call(iflow, 'PUT', `/api/v1/users/${ADMIN_USER}`, { body: { roles: ['monitor'] } });
    assertError(demote, 409, 'LAST_ADMIN');
    assertError(await call(iflow, 'PUT', `/api/v1/users/${ADMIN_USER}`, { body: { roles: [] } }), 409, 'LAST_ADMIN');
    assertError(await call(iflow, 'PUT', `/api/v1/users/${ADMIN_USER}`, { body: { roles: ['monitor'], password: 'never-applied-pw' } }), 409, 'LAST_ADMIN');
    assertError(await call(iflow, 'DELETE', `/api/v1/users/${ADMIN_USER}`), 409, 'LAST_ADMIN');
    const stored = await iflow.app.store.users.get(ADMIN_USER);
    assert.deepEqual(stored?.roles, ['admin']);
    assert.equal((await call(iflow, 'GET', '/api/v1/users')).status, 200, 'the admin still logs in with the old password');

    // Keeping admin while adding other roles is fine.
    const widened = await call(iflow, 'PUT', `/api/v1/users/${ADMIN_USER}`, { body: { roles: ['monitor', 'admin'] } });
    assert.equal(widened.status, 200, widened.text);
    assertUserView(widened.json, ADMIN_USER, ['monitor', 'admin']);
  });

  test('once a second administrator exists the first may go, and then the second is the last', async () => {
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'second-admin', password: 'second-admin-password', roles: ['admin'] } })).status, 201);
    const secondAuth = basicAuth('second-admin', 'second-admin-password');

    const demoted = await call(iflow, 'PUT', `/api/v1/users/${ADMIN_USER}`, { body: { roles: ['monitor'] } });
    assert.equal(demoted.status, 200, demoted.text);
    assertError(await call(iflow, 'GET', '/api/v1/users'), 403, 'FORBIDDEN');

    assertError(await call(iflow, 'PUT', '/api/v1/users/second-admin', { auth: secondAuth, body: { roles: ['monitor'] } }), 409, 'LAST_ADMIN');
    assertError(await call(iflow, 'DELETE', '/api/v1/users/second-admin', { auth: secondAuth }), 409, 'LAST_ADMIN');

    assert.equal((await call(iflow, 'DELETE', `/api/v1/users/${ADMIN_USER}`, { auth: secondAuth })).status, 204);
    assertError(await call(iflow, 'GET', '/api/v1/users'), 401, 'UNAUTHORIZED');
    assertError(await call(iflow, 'DELETE', '/api/v1/users/second-admin', { auth: secondAuth }), 409, 'LAST_ADMIN');
    assert.deepEqual(((await call(iflow, 'GET', '/api/v1/users', { auth: secondAuth })).json as UserView[]).map((u) => u.name), ['second-admin']);
  });
});

describe('changes at the same moment', () => {
  test('two admins demoting each other at once leave one admin; a password and a role change at once both apply', async (t) => {
    const iflow = await startIflow();
    t.after(() => iflow.close());
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'ops-admin', password: 'ops-admin-password', roles: ['admin'] } })).status, 201);
    const opsAuth = basicAuth('ops-admin', 'ops-admin-password');
    // Both logins verified first, so both requests reach their handlers together (a password change takes ~50 ms).
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth: opsAuth })).status, 200);
    const [a, b] = await Promise.all([
      call(iflow, 'PUT', `/api/v1/users/${ADMIN_USER}`, { auth: opsAuth, body: { password: ADMIN_PASSWORD, roles: ['monitor'] } }),
      call(iflow, 'PUT', '/api/v1/users/ops-admin', { body: { roles: ['monitor'] } }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409], `${a.text} ${b.text}`);
    const admins = (await iflow.app.store.users.list()).filter((user) => user.roles.includes('admin'));
    assert.equal(admins.length, 1, 'one administrator is left');

    const admin = admins[0].name === ADMIN_USER ? iflow.adminAuth : opsAuth;
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { auth: admin, body: { name: 'kim', password: 'kim-password-1', roles: ['r1'] } })).status, 201);
    const [password, roles] = await Promise.all([
      call(iflow, 'PUT', '/api/v1/users/kim', { auth: admin, body: { password: 'kim-password-2' } }),
      call(iflow, 'PUT', '/api/v1/users/kim', { auth: admin, body: { roles: ['r2'] } }),
    ]);
    assert.deepEqual([password.status, roles.status], [200, 200]);
    assert.deepEqual((await iflow.app.store.users.get('kim'))?.roles, ['r2'], 'the role change is not lost');
    assert.equal((await call(iflow, 'GET', '/api/v1/flows', { auth: basicAuth('kim', 'kim-password-2') })).status, 403, 'the new password works (403: no role for it)');
  });
});

describe('who did what, in the log', () => {
  test('user changes name the user and who made them; admin requests name their user; refused callers are warned about', async (t) => {
    const iflow = await startIflow();
    t.after(() => iflow.close());
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'pat', password: 'pat-password-1', roles: ['monitor'] } })).status, 201);
    assert.equal((await call(iflow, 'PUT', '/api/v1/users/pat', { body: { password: 'pat-password-2' } })).status, 200);
    assert.equal((await call(iflow, 'PUT', '/api/v1/users/pat', { body: { roles: ['monitor', 'ESBMessaging.send'] } })).status, 200);
    const lines = () => iflow.logs.records();
    const audit = lines().filter((r) => typeof r.msg === 'string' && /^user (created|changed|deleted)$/.test(r.msg));
    assert.deepEqual(
      audit.map(({ msg, user, roles, changed, by }) => ({ msg, user, roles, changed, by })),
      [
        { msg: 'user created', user: 'pat', roles: ['monitor'], changed: undefined, by: ADMIN_USER },
        { msg: 'user changed', user: 'pat', roles: undefined, changed: ['password'], by: ADMIN_USER },
        { msg: 'user changed', user: 'pat', roles: ['monitor', 'ESBMessaging.send'], changed: ['roles'], by: ADMIN_USER },
      ],
    );
    assert.equal((await call(iflow, 'DELETE', '/api/v1/users/pat')).status, 204);
    await waitFor(() => lines().find((r) => r.msg === 'user deleted' && r.user === 'pat' && r.by === ADMIN_USER), { what: 'user deleted line' });
    const completed = await waitFor(() => lines().find((r) => r.msg === 'request completed' && (r.res as { statusCode?: number } | undefined)?.statusCode === 204), { what: 'request completed line' });
    assert.equal(completed.user, ADMIN_USER, 'the request line names the user it was let in as');

    // No credentials at all is the challenge a browser starts with, not a refusal: no warning.
    assert.equal((await call(iflow, 'GET', '/api/v1/users', { auth: null })).status, 401);
    // A wrong password at the administration API: a warning at once, without a user name nobody has.
    const refused = await call(iflow, 'GET', '/api/v1/flows?x=1', { auth: basicAuth('guesser', 'guessed-password-1') });
    assert.equal(refused.status, 401);
    const warning = await waitFor(() => lines().find((r) => r.msg === 'caller refused at the administration API'), { what: 'refusal warning' });
    assert.deepEqual({ level: warning.level, path: warning.path, statusCode: warning.statusCode, user: warning.user, remoteAddress: warning.remoteAddress }, {
      level: 40,
      path: '/api/v1/flows',
      statusCode: 401,
      user: undefined,
      remoteAddress: '127.0.0.1',
    });
    assert.equal(lines().filter((r) => r.msg === 'caller refused at the administration API').length, 1, 'the unauthenticated request was not one');
    assert.ok(!iflow.logs.text.includes('guessed-password-1'));
  });

  test("a 403 names every role that would do, admin included", async (t) => {
    const iflow = await startIflow();
    t.after(() => iflow.close());
    assert.equal((await call(iflow, 'POST', '/api/v1/users', { body: { name: 'erp', password: 'erp-password-1', roles: ['ESBMessaging.send'] } })).status, 201);
    const answer = await call(iflow, 'GET', '/api/v1/MessageProcessingLogs', { auth: basicAuth('erp', 'erp-password-1') });
    const body = assertError(answer, 403, 'FORBIDDEN');
    assert.equal(body.error.message, 'User "erp" lacks the role this needs (monitor or admin)');
  });
});

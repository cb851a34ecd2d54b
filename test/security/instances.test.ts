import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_USER, basicAuth, startIflow, waitFor } from '../support/iflow.ts';
import { SKIP_POSTGRES_OPTION, TestSchemas, schemaBehindProxy } from '../support/postgres.ts';
import { api } from '../credentials/helpers.ts';
import { hashPassword } from '../../src/security/passwords.ts';

/** Two iflow instances sharing one fresh PostgreSQL schema, closed after the test. */
async function twoInstances(t: TestContext) {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { schema, url } = await schemas.create();
  const one = await startIflow({ env: { DATABASE_URL: url } });
  t.after(() => one.close());
  const two = await startIflow({ env: { DATABASE_URL: url } });
  t.after(() => two.close());
  return { schemas, schema, one, two };
}

test('two instances on one PostgreSQL: a user changed or deleted through one is refused by the other at once, not a minute later', SKIP_POSTGRES_OPTION, async (t) => {
  const { schemas, schema, one, two } = await twoInstances(t);

  const asClerk = (password: string) => fetch(`${two.url}/api/v1/flows`, { headers: { authorization: basicAuth('clerk', password) } });

  assert.equal((await api(one, 'POST', '/api/v1/users', { name: 'clerk', password: 'clerk-password-1', roles: ['monitor'] })).status, 201);
  // Both listen before anything is cached: a listener that starts later drops every cache when it does,
  // which would let this test pass without any announcement.
  await waitFor(async () => (await schemas.listeners(schema)).length === 2, { what: 'both instances to listen' });
  assert.equal((await asClerk('clerk-password-1')).status, 200, 'the other instance verifies and caches the login');

  assert.equal((await api(one, 'PUT', '/api/v1/users/clerk', { password: 'clerk-password-2', roles: ['monitor'] })).status, 200);
  // Bounded far below the minute a cached login lasts: only the announcement can make this pass.
  await waitFor(async () => (await asClerk('clerk-password-1')).status === 401, { timeoutMs: 5000, what: 'the old password to be refused by the other instance' });
  assert.equal((await asClerk('clerk-password-2')).status, 200);

  assert.equal((await api(one, 'DELETE', '/api/v1/users/clerk')).status, 204);
  await waitFor(async () => (await asClerk('clerk-password-2')).status === 401, { timeoutMs: 5000, what: 'the deleted user to be refused by the other instance' });
});

test("two instances on one PostgreSQL: a change to one user drops only that user's cached logins on the other", SKIP_POSTGRES_OPTION, async (t) => {
  const { schemas, schema, one, two } = await twoInstances(t);
  const onTwo = (user: string, password: string) => fetch(`${two.url}/api/v1/flows`, { headers: { authorization: basicAuth(user, password) } });

  assert.equal((await api(one, 'POST', '/api/v1/users', { name: 'clerk', password: 'clerk-password-1', roles: ['monitor'] })).status, 201);
  assert.equal((await api(one, 'POST', '/api/v1/users', { name: 'auditor', password: 'auditor-password-1', roles: ['monitor'] })).status, 201);
  await waitFor(async () => (await schemas.listeners(schema)).length === 2, { what: 'both instances to listen' });
  assert.equal((await onTwo('clerk', 'clerk-password-1')).status, 200);
  assert.equal((await onTwo('auditor', 'auditor-password-1')).status, 200, 'the other instance caches the auditor login');

  // The auditor's password changes without an announcement, so only a cache drop would show it on instance two.
  const newHash = await hashPassword('auditor-password-2');
  await schemas.admin.query('BEGIN');
  await schemas.admin.query(`ALTER TABLE ${schema}.users DISABLE TRIGGER users_changed`);
  await schemas.admin.query(`UPDATE ${schema}.users SET password_hash = $1 WHERE name = 'auditor'`, [newHash]);
  await schemas.admin.query(`ALTER TABLE ${schema}.users ENABLE TRIGGER users_changed`);
  await schemas.admin.query('COMMIT');

  assert.equal((await api(one, 'PUT', '/api/v1/users/clerk', { password: 'clerk-password-2', roles: ['monitor'] })).status, 200);
  await waitFor(async () => (await onTwo('clerk', 'clerk-password-1')).status === 401, { timeoutMs: 5000, what: "the clerk's old password to be refused by the other instance" });
  assert.equal((await onTwo('auditor', 'auditor-password-1')).status, 200, "the auditor's login stays cached: the clerk's change did not drop it");

  assert.equal((await api(one, 'PUT', '/api/v1/users/auditor', { roles: ['monitor'] })).status, 200);
  await waitFor(async () => (await onTwo('auditor', 'auditor-password-1')).status === 401, { timeoutMs: 5000, what: "the auditor's change to drop that login" });
  assert.equal((await onTwo('auditor', 'auditor-password-2')).status, 200);
});

test('two instances on one PostgreSQL: two admins demoting each other at the same moment leave one admin', SKIP_POSTGRES_OPTION, async (t) => {
  const { one, two } = await twoInstances(t);
  assert.equal((await api(one, 'POST', '/api/v1/users', { name: 'ops-admin', password: 'ops-admin-password', roles: ['admin'] })).status, 201);
  const admins: Record<string, string> = { [ADMIN_USER]: one.adminAuth, 'ops-admin': basicAuth('ops-admin', 'ops-admin-password') };
  const demote = (via: typeof one, by: string, whom: string) =>
    fetch(`${via.url}/api/v1/users/${whom}`, { method: 'PUT', headers: { authorization: admins[by], 'content-type': 'application/json' }, body: JSON.stringify({ roles: ['monitor'] }) });
  // Both logins verified on both instances first, so the requests reach their handlers together.
  for (const via of [one, two]) for (const auth of Object.values(admins)) assert.equal((await fetch(`${via.url}/api/v1/flows`, { headers: { authorization: auth } })).status, 200);
  for (let round = 0; round < 5; round++) {
    const [a, b] = await Promise.all([demote(one, ADMIN_USER, 'ops-admin'), demote(two, 'ops-admin', ADMIN_USER)]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409], `round ${round}: ${await a.text()} ${await b.text()}`);
    const left = (await one.app.store.users.list()).filter((user) => user.roles.includes('admin')).map((user) => user.name);
    assert.equal(left.length, 1, `round ${round}: admins left ${JSON.stringify(left)}`);
    // The one left makes the other an admin again for the next round.
    const other = left[0] === ADMIN_USER ? 'ops-admin' : ADMIN_USER;
    const restored = await fetch(`${one.url}/api/v1/users/${other}`, { method: 'PUT', headers: { authorization: admins[left[0]], 'content-type': 'application/json' }, body: JSON.stringify({ roles: ['admin'] }) });
    assert.equal(restored.status, 200);
  }
});

test('the connection hearing of other instances lost: one warning however often it is tried again, one line when it hears again', SKIP_POSTGRES_OPTION, async (t) => {
  const { url, proxy } = await schemaBehindProxy(t);
  const iflow = await startIflow({ env: { DATABASE_URL: url } });
  t.after(() => iflow.close());
  const lines = (start: string) => iflow.logs.records().filter((record) => String(record.msg).startsWith(start));
  // Listening: a user's change through the database is heard (the watcher drops the cached login).
  assert.equal((await api(iflow, 'GET', '/api/v1/users')).status, 200);

  proxy.cut();
  // The loss, then two tries refused (0.5 s and 1 s later): three failures, which were three warnings.
  await waitFor(() => proxy.refused >= 2 && lines('cannot hear of changes').length > 0, { timeoutMs: 10_000, what: 'two tries to reconnect refused' });
  const warnings = lines('cannot hear of changes');
  assert.equal(warnings.length, 1, iflow.logs.text);
  assert.equal(warnings[0].level, 40);
  assert.equal(typeof warnings[0].reason, 'string');
  assert.equal(lines('hearing of changes').length, 0, 'not heard again yet');

  proxy.restore();
  const [heard] = await waitFor(() => {
    const found = lines('hearing of changes made by other instances sharing the store again');
    return found.length > 0 ? found : undefined;
  }, { timeoutMs: 10_000, what: 'the line saying it hears again' });
  assert.equal(heard.level, 30);
  assert.equal(typeof heard.unheardMs, 'number');
  assert.equal(lines('cannot hear of changes').length, 1, 'no more warnings');
  assert.equal(lines('still cannot hear of changes').length, 0, 'no summary once heard again');
  assert.ok(!iflow.logs.text.includes('postgres://'), 'no database URL in the log');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { storeUnavailableReason } from '../../src/store/unavailable.ts';
import { HttpError } from '../../src/errors.ts';
import { basicAuth, startIflow, waitFor } from '../support/iflow.ts';
import { SKIP_POSTGRES_OPTION, TestSchemas, schemaBehindProxy } from '../support/postgres.ts';
import { api } from '../credentials/helpers.ts';

function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

test('storeUnavailableReason: lost or refused connections, a server shutting down, SQLite busy; nothing else', () => {
  assert.equal(storeUnavailableReason(coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')), 'ECONNREFUSED');
  assert.equal(storeUnavailableReason(new Error('Connection terminated unexpectedly')), 'Connection terminated unexpectedly');
  assert.equal(storeUnavailableReason(new Error('timeout exceeded when trying to connect')), 'timeout exceeded when trying to connect');
  assert.equal(storeUnavailableReason(coded('terminating connection due to administrator command', '57P01')), '57P01');
  assert.equal(storeUnavailableReason(coded('connection failure', '08006')), '08006');
  const everyAddress = new AggregateError([coded('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED'), coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')]);
  assert.equal(storeUnavailableReason(everyAddress), 'ECONNREFUSED');

  assert.equal(storeUnavailableReason(coded('duplicate key value violates unique constraint', '23505')), undefined);
  assert.equal(storeUnavailableReason(coded('pgbouncer cannot connect to server', '08P01')), '08P01', "PgBouncer's own troubles");
  // The server gave up on a statement (statement_timeout), or on a lock (lock_timeout); the client on an answer (query_timeout).
  assert.equal(storeUnavailableReason(coded('canceling statement due to statement timeout', '57014')), '57014');
  assert.equal(storeUnavailableReason(coded('canceling statement due to lock timeout', '55P03')), '55P03');
  assert.equal(storeUnavailableReason(new Error('Query read timeout')), 'Query read timeout');
  assert.equal(storeUnavailableReason(coded('database table is locked', 'SQLITE_LOCKED')), undefined, 'a lock within one connection: a bug');
  // A caller that went away in the middle of its body: Node's "aborted", with a status of the request's own.
  assert.equal(storeUnavailableReason(Object.assign(coded('aborted', 'ECONNRESET'), { statusCode: 400 })), undefined);
  assert.equal(storeUnavailableReason(new TypeError('x is not a function')), undefined);
  assert.equal(storeUnavailableReason(new HttpError(404, 'NOT_FOUND', 'Connection terminated')), undefined);
  assert.equal(storeUnavailableReason(new AggregateError([coded('refused', 'ECONNREFUSED'), new Error('other')])), undefined);
  // A cause is not followed: a wrapped connection error may be another server's (a token endpoint's).
  assert.equal(storeUnavailableReason(new Error('token request failed', { cause: coded('refused', 'ECONNREFUSED') })), undefined);
  assert.equal(storeUnavailableReason('ECONNREFUSED'), undefined);
});

test('storeUnavailableReason: a real SQLite write refused because another connection holds the lock', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-busy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const holder = new Database(join(dir, 'busy.db'));
  const writer = new Database(join(dir, 'busy.db'));
  t.after(() => {
    holder.close();
    writer.close();
  });
  holder.pragma('journal_mode = WAL');
  holder.exec('CREATE TABLE t (x INTEGER)');
  writer.pragma('busy_timeout = 0');
  holder.exec('BEGIN IMMEDIATE');
  let refused: unknown;
  try {
    writer.prepare('INSERT INTO t (x) VALUES (1)').run();
  } catch (err) {
    refused = err;
  }
  assert.ok(refused instanceof Error, 'the write was refused');
  assert.equal(storeUnavailableReason(refused), 'SQLITE_BUSY');
});

test('PostgreSQL unreachable: the admin API and uncached logins answer 503 STORE_UNAVAILABLE with Retry-After, logged once, and recover when it is back', SKIP_POSTGRES_OPTION, async (t) => {
  const { url: proxied, proxy } = await schemaBehindProxy(t);
  const iflow = await startIflow({ env: { DATABASE_URL: proxied } });
  t.after(() => iflow.close());

  assert.equal((await api(iflow, 'POST', '/api/v1/users', { name: 'watcher', password: 'watcher-password-1', roles: ['monitor'] })).status, 201);
  const usersBefore = await iflow.app.store.users.list();

  proxy.cut();
  const asAdmin = await fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: iflow.adminAuth } });
  const body = (await asAdmin.json()) as { error: { code: string; message: string } };
  assert.equal(asAdmin.status, 503, JSON.stringify(body));
  assert.equal(asAdmin.headers.get('retry-after'), '5');
  assert.equal(body.error.code, 'STORE_UNAVAILABLE');
  assert.match(body.error.message, /cannot be reached, or has no connection free, right now: send the request again/);
  // The watcher's login was never verified, so it is not cached: verifying it needs the store.
  const uncached = await fetch(`${iflow.url}/api/v1/flows`, { headers: { authorization: basicAuth('watcher', 'watcher-password-1') } });
  assert.equal(uncached.status, 503, await uncached.text());
  const created = await api(iflow, 'POST', '/api/v1/users', { name: 'during', password: 'during-password-1', roles: ['monitor'] });
  assert.equal(created.status, 503);

  const records = iflow.logs.records();
  const warnings = records.filter((record) => String(record.msg).startsWith('the store cannot be reached'));
  assert.equal(warnings.length, 1, iflow.logs.text);
  assert.equal(warnings[0].level, 40);
  assert.equal(typeof warnings[0].reason, 'string');
  assert.ok(!records.some((record) => record.msg === 'unhandled error'), 'no 500 and no stack in the log');
  assert.ok(!iflow.logs.text.includes('watcher-password-1') && !iflow.logs.text.includes('during-password-1'), 'no password in the log');

  proxy.restore();
  await waitFor(async () => (await fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: iflow.adminAuth } })).status === 200, {
    timeoutMs: 10_000,
    intervalMs: 100,
    what: 'the users API to answer again once the database is back',
  });
  assert.equal((await fetch(`${iflow.url}/api/v1/flows`, { headers: { authorization: basicAuth('watcher', 'watcher-password-1') } })).status, 200);
  assert.deepEqual(await iflow.app.store.users.list(), usersBefore, 'nothing stored or lost while it was away');
});

test('a caller that goes away in the middle of its body is not a store outage: no 503 warning in the log', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  // The admin's login cached first: the body is then read as soon as the request is in, not after scrypt.
  assert.equal((await fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: iflow.adminAuth } })).status, 200);
  const socket = connect(Number(new URL(iflow.url).port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: ${iflow.adminAuth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`);
  await waitFor(() => iflow.logs.records().filter((r) => r.msg === 'incoming request').length === 2, { what: 'the request to arrive' });
  socket.destroy();
  await waitFor(() => iflow.logs.records().some((r) => r.msg === 'connection closed before the reply was sent'), { what: 'the abort to be seen' });
  // One more request through the server: whatever the abort set off has run by then.
  assert.equal((await fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: iflow.adminAuth } })).status, 200);
  assert.ok(!iflow.logs.records().some((r) => String(r.msg).startsWith('the store cannot be reached')), iflow.logs.text);
});

/** An admin API call as `auth`, given up (an AbortError) after `ms`: a call that hangs fails the test instead of holding it. */
async function within(ms: number, url: string, auth: string, init: RequestInit = {}) {
  const started = Date.now();
  const response = await fetch(url, { ...init, headers: { authorization: auth, ...(init.headers as Record<string, string> | undefined) }, signal: AbortSignal.timeout(ms) });
  const text = await response.text();
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text, ms: Date.now() - started };
}

test('PostgreSQL table locked (a migration, by hand): the queries waiting for it answer 503 after lock_timeout, and do not hold the pool from logins and the rest of the admin API', SKIP_POSTGRES_OPTION, async (t) => {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { schema, url } = await schemas.create();
  // 1 s statement timeout: lock waits end after 0.5 s.
  const iflow = await startIflow({ env: { DATABASE_URL: url, IFLOW_PG_STATEMENT_TIMEOUT: '1s' } });
  t.after(() => iflow.close());
  assert.equal((await api(iflow, 'POST', '/api/v1/users', { name: 'watcher', password: 'watcher-password-1', roles: ['monitor'] })).status, 201);

  await schemas.admin.query('BEGIN');
  try {
    await schemas.admin.query(`LOCK TABLE ${schema}.message_logs IN ACCESS EXCLUSIVE MODE`);
    // More readers of the locked table than the pool has connections (10), then what needs another table.
    const logs = Array.from({ length: 12 }, () => within(5000, `${iflow.url}/api/v1/MessageProcessingLogs('x')`, iflow.adminAuth));
    const users = within(5000, `${iflow.url}/api/v1/users`, iflow.adminAuth);
    // Never verified, so not cached: its login needs the users table.
    const login = within(5000, `${iflow.url}/api/v1/flows`, basicAuth('watcher', 'watcher-password-1'));
    for (const answer of await Promise.all(logs)) {
      assert.equal(answer.status, 503, answer.text);
      assert.equal(answer.retryAfter, '5');
      assert.equal((JSON.parse(answer.text) as { error: { code: string } }).error.code, 'STORE_UNAVAILABLE');
    }
    const [usersAnswer, loginAnswer] = await Promise.all([users, login]);
    assert.equal(usersAnswer.status, 200, usersAnswer.text);
    assert.equal(loginAnswer.status, 200, loginAnswer.text);
    assert.ok(usersAnswer.ms < 4000 && loginAnswer.ms < 4000, `users ${usersAnswer.ms} ms, login ${loginAnswer.ms} ms`);
  } finally {
    await schemas.admin.query('ROLLBACK');
  }
  const warnings = iflow.logs.records().filter((record) => String(record.msg).startsWith('the store cannot be reached'));
  assert.equal(warnings.length, 1, iflow.logs.text);
  assert.equal(warnings[0].reason, '55P03');
  assert.equal((await within(5000, `${iflow.url}/api/v1/MessageProcessingLogs('x')`, iflow.adminAuth)).status, 404, 'answered once the lock is gone');
});

test('PostgreSQL statement running past IFLOW_PG_STATEMENT_TIMEOUT: cancelled by the server, 503 STORE_UNAVAILABLE', SKIP_POSTGRES_OPTION, async (t) => {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { schema, url } = await schemas.create();
  const iflow = await startIflow({ env: { DATABASE_URL: url, IFLOW_PG_STATEMENT_TIMEOUT: '300ms' } });
  t.after(() => iflow.close());
  // A slow insert into users: a trigger that sleeps 5 s.
  await schemas.admin.query(`CREATE FUNCTION ${schema}.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$`);
  await schemas.admin.query(`CREATE TRIGGER slow BEFORE INSERT ON ${schema}.users FOR EACH ROW EXECUTE FUNCTION ${schema}.slow()`);
  const created = await within(4000, `${iflow.url}/api/v1/users`, iflow.adminAuth, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'slow', password: 'slow-password-1', roles: ['monitor'] }),
  });
  assert.equal(created.status, 503, created.text);
  assert.equal(created.retryAfter, '5');
  const warning = iflow.logs.records().find((record) => String(record.msg).startsWith('the store cannot be reached'));
  assert.equal(warning?.reason, '57014', iflow.logs.text);
  assert.ok(!iflow.logs.text.includes('slow-password-1'), 'no password in the log');
  assert.equal((await schemas.admin.query(`SELECT count(*)::int AS n FROM ${schema}.users WHERE name = 'slow'`)).rows[0].n, 0, 'nothing written');
});

test('PostgreSQL not answering (network stalled, connections open): a query gives up after its client-side bound with 503, and the store works again once the network does', SKIP_POSTGRES_OPTION, async (t) => {
  const { url: proxied, proxy } = await schemaBehindProxy(t);
  // 500 ms statement timeout: the client gives up 500 ms after it.
  const iflow = await startIflow({ env: { DATABASE_URL: proxied, IFLOW_PG_STATEMENT_TIMEOUT: '500ms' } });
  t.after(() => iflow.close());
  // The admin's login verified and cached, and a pooled connection left idle.
  assert.equal((await within(5000, `${iflow.url}/api/v1/users`, iflow.adminAuth)).status, 200);

  proxy.stall();
  const stalled = await within(5000, `${iflow.url}/api/v1/users`, iflow.adminAuth);
  assert.equal(stalled.status, 503, stalled.text);
  assert.equal(stalled.retryAfter, '5');
  assert.ok(stalled.ms < 3000, `answered after ${stalled.ms} ms`);
  const warning = iflow.logs.records().find((record) => String(record.msg).startsWith('the store cannot be reached'));
  assert.equal(warning?.reason, 'Query read timeout', iflow.logs.text);

  proxy.restore();
  await waitFor(async () => (await within(5000, `${iflow.url}/api/v1/users`, iflow.adminAuth)).status === 200, {
    timeoutMs: 10_000,
    intervalMs: 100,
    what: 'the users API to answer again once the network does',
  });
});

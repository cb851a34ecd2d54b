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
import { SKIP_POSTGRES_OPTION, schemaBehindProxy } from '../support/postgres.ts';
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

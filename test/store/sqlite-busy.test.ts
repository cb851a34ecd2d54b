import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import { startIflow, waitFor, type RunningIflow } from '../support/iflow.ts';

/**
 * Another connection to the store's file (another process's, as far as SQLite can tell: a backup, the sqlite3
 * shell) holding the write lock with BEGIN IMMEDIATE; let go at the end of the test whatever happened.
 */
function lockHolder(t: TestContext, file: string): Database.Database {
  const holder = new Database(file);
  t.after(() => {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
  });
  holder.exec('BEGIN IMMEDIATE');
  return holder;
}

/** Whether `promise` has settled by the time the event loop comes round once (an answer ready by then counts). */
async function settledWithinATurn(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

async function startWithAdminCached(t: TestContext): Promise<RunningIflow> {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  // The admin's login verified and cached now: the requests below wait for nothing but the store.
  assert.equal((await fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: iflow.adminAuth } })).status, 200);
  return iflow;
}

function send(iflow: RunningIflow, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${iflow.url}${path}`, {
    method,
    headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

test('while another connection holds the SQLite write lock, an admin write waits without stalling the server, and goes through once the lock is let go', async (t) => {
  const iflow = await startWithAdminCached(t);
  const users = iflow.app.store.users;
  let writing = false;
  const create = users.create.bind(users);
  users.create = (record) => {
    writing = true;
    return create(record);
  };
  const holder = lockHolder(t, join(iflow.dataDir, 'iflow.db'));

  const order: string[] = [];
  const posting = send(iflow, 'POST', '/api/v1/users', { name: 'patient', password: 'patient-password-1', roles: ['monitor'] }).then((res) => {
    order.push('write');
    return res;
  });
  await waitFor(() => writing, { what: 'the user write to reach the store' });
  // The write now waits for the lock: the server still answers (a blocked event loop would answer it only after
  // the write had failed).
  const health = await fetch(`${iflow.url}/health`);
  order.push('health');
  assert.equal(health.status, 200);
  assert.deepEqual(order, ['health'], 'answered while the write waited');

  holder.exec('COMMIT');
  const posted = await posting;
  assert.equal(posted.status, 201, await posted.clone().text());
  assert.deepEqual(order, ['health', 'write']);
  assert.deepEqual((await iflow.app.store.users.get('patient'))?.roles, ['monitor']);
});

test('a write the lock holds up past the 5 s budget answers 503 STORE_UNAVAILABLE and changes nothing; the server answers meanwhile', async (t) => {
  const iflow = await startWithAdminCached(t);
  assert.equal((await send(iflow, 'POST', '/api/v1/users', { name: 'kept', password: 'kept-password-1', roles: ['monitor'] })).status, 201);
  const users = iflow.app.store.users;
  let writing = false;
  const update = users.update.bind(users);
  users.update = (record) => {
    writing = true;
    return update(record);
  };
  const holder = lockHolder(t, join(iflow.dataDir, 'iflow.db'));

  const order: string[] = [];
  const putting = send(iflow, 'PUT', '/api/v1/users/kept', { roles: ['admin'] }).then((res) => {
    order.push('write');
    return res;
  });
  await waitFor(() => writing, { what: 'the user update to reach the store' });
  assert.equal((await fetch(`${iflow.url}/health`)).status, 200);
  order.push('health');

  const put = await putting;
  assert.deepEqual(order, ['health', 'write']);
  assert.equal(put.status, 503);
  assert.equal(put.headers.get('retry-after'), '5');
  assert.equal(((await put.json()) as { error: { code: string } }).error.code, 'STORE_UNAVAILABLE');
  assert.ok(iflow.logs.text.includes('SQLITE_BUSY'), 'the warning names the reason');

  holder.exec('ROLLBACK');
  assert.deepEqual((await users.get('kept'))?.roles, ['monitor'], 'the stored user is as it was');
});

test('a store opened while another connection holds the write lock waits for it off the event loop (WAL switch and migrations retried), then opens', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-busy-open-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const holder = lockHolder(t, join(dataDir, 'iflow.db'));

  const opening = openSqliteStore(dataDir);
  assert.equal(await settledWithinATurn(opening), false, 'still waiting, and the event loop turned');
  holder.exec('COMMIT');
  const store = await opening;
  t.after(() => store.close());
  assert.equal(store.settings.journalMode, 'wal');
  assert.equal(await store.users.count(), 0);
});

test('an OAuth state stored while the lock is held is stored whole once it is let go: the purge of expired states and the insert, one transaction', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-busy-state-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const store = await openSqliteStore(dataDir);
  t.after(() => store.close());
  const state = (name: string, expiresAt: string) => ({ state: name, credentialName: 'c', codeVerifier: 'v', expiresAt });
  await store.credentials.putOAuthState(state('expired', '2000-01-01T00:00:00.000Z'));
  const holder = lockHolder(t, join(dataDir, 'iflow.db'));

  const putting = store.credentials.putOAuthState(state('fresh', '2999-01-01T00:00:00.000Z'));
  assert.equal(await settledWithinATurn(putting), false, 'still waiting, and the event loop turned');
  holder.exec('COMMIT');
  await putting;
  assert.equal(await store.credentials.takeOAuthState('expired'), undefined, 'purged');
  assert.equal((await store.credentials.takeOAuthState('fresh'))?.state, 'fresh');
});

// The start-up log line says which store iflow opened, where, and how it keeps data (read back from the store).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startIflow } from '../support/iflow.ts';
import { SKIP_POSTGRES_OPTION, TestSchemas } from '../support/postgres.ts';

const storeLine = (records: Record<string, unknown>[]) => records.find((line) => line.msg === 'store opened');

test('SQLite: the log names the file, WAL and synchronous FULL (users and credentials survive a power cut)', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  const line = storeLine(iflow.logs.records());
  assert.ok(line, 'a store opened line');
  assert.equal(line.store, 'sqlite');
  assert.equal(line.file, join(iflow.app.config.dataDir, 'iflow.db'));
  assert.equal(line.journalMode, 'wal');
  assert.equal(line.synchronous, 'full');
  assert.equal(line.messageLogSynchronous, 'normal', 'message logs are written by the writer thread, without waiting for the disk');
  assert.equal(line.fileMode, '0600');
  // Owner only, the database and its WAL files alike.
  for (const suffix of ['', '-wal', '-shm']) assert.equal(statSync(`${line.file}${suffix}`).mode & 0o777, 0o600, `iflow.db${suffix}`);
});

test('PostgreSQL: the log names user, host, port and database, never the password', SKIP_POSTGRES_OPTION, async (t) => {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { schema, url } = await schemas.create();
  // The test server trusts local connections: a password in the URL is never asked for, but must not be logged.
  const withPassword = new URL(url);
  withPassword.password = 'pg-Secret-9f3';
  const iflow = await startIflow({ env: { DATABASE_URL: withPassword.toString() } });
  t.after(() => iflow.close());
  const line = storeLine(iflow.logs.records());
  assert.ok(line, 'a store opened line');
  assert.equal(line.store, 'postgres');
  assert.equal(line.database, `${decodeURIComponent(withPassword.username)}@${withPassword.hostname}:${withPassword.port || '5432'}${withPassword.pathname}`);
  assert.equal(line.schema, schema, 'the schema the tables are in');
  assert.ok(!iflow.logs.text.includes('pg-Secret-9f3'));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import { openPostgresStore } from '../../src/store/postgres/index.ts';
import { SKIP_POSTGRES_OPTION, TestSchemas } from '../support/postgres.ts';

// A store migrated by a newer iflow (an upgrade rolled back) must not be opened as if this iflow knew its schema.
const NEWER = /schema is at version 9999, newer than this iflow knows \(up to \d+\): it was migrated by a newer iflow/;

test('SQLite: a schema migrated by a newer iflow is refused at start, in words', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-newer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await (await openSqliteStore(dir)).close();
  const db = new Database(join(dir, 'iflow.db'));
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(9999, 'from a newer iflow', new Date().toISOString());
  db.close();
  await assert.rejects(openSqliteStore(dir), NEWER);
  // Refused cleanly: the data dir is not left locked (a second try says the same, not "in use by another iflow process").
  await assert.rejects(openSqliteStore(dir), NEWER);
});

test('PostgreSQL: a schema migrated by a newer iflow is refused at start, in words', SKIP_POSTGRES_OPTION, async (t) => {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { schema, url } = await schemas.create();
  await (await openPostgresStore(url)).close();
  await schemas.admin.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.schema_migrations (version, name, applied_at) VALUES (9999, 'from a newer iflow', now()::text)`);
  await assert.rejects(openPostgresStore(url), NEWER);
});

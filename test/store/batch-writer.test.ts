import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteBatchWriter } from '../../src/store/sqlite/batch-writer.ts';
import { storeUnavailableReason } from '../../src/store/unavailable.ts';

test('a writer thread that cannot prepare its insert fails opening, and every later write at once (none waits forever)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-writer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.db');
  new Database(file).close();
  const writer = new SqliteBatchWriter(file, { table: 'no_such_table', columns: ['a'] });
  t.after(() => writer.close());
  await assert.rejects(writer.opened, (err: Error & { code?: string }) => {
    assert.match(err.message, /no such table: no_such_table/);
    assert.equal(err.code, 'SQLITE_ERROR');
    return true;
  });
  await assert.rejects(writer.write([[1]]), /no such table|writer thread stopped/);
  await assert.rejects(writer.run('DELETE FROM no_such_table', []), /no such table|writer thread stopped/);
});

test('a writer thread reports its connection opened with the durability it was given, and writes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-writer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.db');
  const db = new Database(file);
  db.exec('CREATE TABLE t (a INTEGER)');
  const writer = new SqliteBatchWriter(file, { table: 't', columns: ['a'] });
  t.after(async () => {
    await writer.close();
    db.close();
  });
  assert.deepEqual(await writer.opened, { synchronous: 1 }, 'NORMAL');
  await writer.write([[1], [2]]);
  assert.equal(db.prepare('SELECT COUNT(*) FROM t').pluck().get(), 2);
});

test("a write the thread fails keeps SQLite's code: a bad row is the write's own error, a lock past the busy timeout an unavailable store", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-writer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.db');
  const holder = new Database(file);
  holder.pragma('journal_mode = WAL');
  holder.exec('CREATE TABLE t (a INTEGER NOT NULL)');
  const writer = new SqliteBatchWriter(file, { table: 't', columns: ['a'] });
  t.after(async () => {
    await writer.close();
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
  });
  await writer.opened;

  await assert.rejects(writer.write([[null]]), (err: Error & { code?: string }) => {
    assert.match(err.message, /NOT NULL constraint failed/);
    assert.equal(err.code, 'SQLITE_CONSTRAINT_NOTNULL');
    assert.equal(storeUnavailableReason(err), undefined);
    return true;
  });

  // Another connection holds the write lock past the thread's busy timeout (5 s).
  holder.exec('BEGIN IMMEDIATE');
  await assert.rejects(writer.write([[1]]), (err: Error & { code?: string }) => {
    assert.equal(err.message, 'database is locked');
    assert.equal(err.code, 'SQLITE_BUSY');
    assert.equal(storeUnavailableReason(err), 'SQLITE_BUSY', 'a 503 to send again, and a warning naming the code');
    return true;
  });
  holder.exec('ROLLBACK');
  await writer.write([[1]]);
  assert.equal(holder.prepare('SELECT COUNT(*) FROM t').pluck().get(), 1);
});

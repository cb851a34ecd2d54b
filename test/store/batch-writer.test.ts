import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteBatchWriter } from '../../src/store/sqlite/batch-writer.ts';

test('a writer thread that cannot prepare its insert fails opening, and every later write at once (none waits forever)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-writer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.db');
  new Database(file).close();
  const writer = new SqliteBatchWriter(file, { table: 'no_such_table', columns: ['a'] });
  t.after(() => writer.close());
  await assert.rejects(writer.opened, /no such table: no_such_table/);
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

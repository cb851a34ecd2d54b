import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import { LOCK_FILE } from '../../src/store/sqlite/data-dir-lock.ts';
import { startIflow } from '../support/iflow.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a second store on a data dir in use is refused in words, and opens once the first has closed', async (t) => {
  const dataDir = tempDir(t);
  const first = await openSqliteStore(dataDir);
  await assert.rejects(openSqliteStore(dataDir), (err: Error) => {
    assert.equal(err.message, `the data dir ${dataDir} is in use by another iflow process: stop it, or give this one its own IFLOW_DATA_DIR (several instances can share a PostgreSQL store: DATABASE_URL)`);
    return true;
  });
  // The refused one touched nothing: the first still works, and still holds the dir (closing the refused
  // attempt's connection did not let go of the first's lock).
  assert.equal(await first.users.count(), 0);
  await assert.rejects(openSqliteStore(dataDir), /is in use by another iflow process/);
  assert.equal(statSync(join(dataDir, LOCK_FILE)).mode & 0o777, 0o600);
  await first.close();
  const second = await openSqliteStore(dataDir);
  await second.close();
});

/** The files this process holds open, by path (Linux: /proc/self/fd). */
function openFiles(): string[] {
  const dir = '/proc/self/fd';
  return readdirSync(dir).flatMap((fd) => {
    try {
      return [readlinkSync(join(dir, fd))];
    } catch {
      return []; // closed since listed (the directory's own fd)
    }
  });
}

test('a store that fails opening lets go of its database file and of the data dir', { skip: process.platform !== 'linux' && '/proc/self/fd is Linux only' }, async (t) => {
  const dataDir = tempDir(t);
  const file = join(dataDir, 'iflow.db');
  writeFileSync(file, 'not a SQLite database, but long enough to be read as one and refused'.repeat(20));
  await assert.rejects(openSqliteStore(dataDir), /file is not a database/);
  assert.deepEqual(openFiles().filter((path) => path.startsWith(file)), [], 'no connection left open on iflow.db');
  // The lock went too: once the file is fixed, the next open succeeds.
  rmSync(file);
  const store = await openSqliteStore(dataDir);
  await store.close();
});

test('iflow start on a data dir another iflow serves from exits 1 saying so; the first keeps serving', async (t) => {
  const dataDir = tempDir(t);
  const running = await startIflow({ dataDir });
  t.after(() => running.close());
  const child = spawn(process.execPath, ['bin/iflow.js', 'start'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', IFLOW_DATA_DIR: dataDir, IFLOW_ADMIN_PASSWORD: 'lock-test-password-1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(killer);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /^iflow: cannot start: the data dir .* is in use by another iflow process/m);
  assert.equal((await fetch(`${running.url}/api/v1/users`, { headers: { authorization: running.adminAuth } })).status, 200);
});

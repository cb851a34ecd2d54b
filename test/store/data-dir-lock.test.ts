import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runIflowStart } from '../support/process.ts';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  const { code, stderr } = await runIflowStart({ IFLOW_DATA_DIR: dataDir, IFLOW_ADMIN_PASSWORD: 'lock-test-password-1' });
  assert.equal(code, 1, stderr);
  assert.match(stderr, /^iflow: cannot start: the data dir .* is in use by another iflow process/m);
  assert.equal((await fetch(`${running.url}/api/v1/users`, { headers: { authorization: running.adminAuth } })).status, 200);
});

/** What a store that cannot open `file` in `dataDir` says: the file, IFLOW_DATA_DIR, SQLite's reason, and who must be able to write there. */
function cannotOpen(file: string, dataDir: string, reason: string): string {
  return `cannot open the SQLite store ${file} (IFLOW_DATA_DIR=${dataDir}): ${reason} – is ${dataDir} a directory writable by this user (uid ${process.getuid!()})?`;
}

test('a store whose database or lock file cannot be opened names the file and IFLOW_DATA_DIR, and lets go of the dir', async (t) => {
  // Folders where the files should be: SQLite cannot open them, as root too (unlike a read-only dir).
  const dataDir = tempDir(t);
  const file = join(dataDir, 'iflow.db');
  mkdirSync(file);
  await assert.rejects(openSqliteStore(dataDir), (err: Error) => {
    assert.equal(err.message, cannotOpen(file, dataDir, 'unable to open database file'));
    assert.equal((err.cause as { code?: string }).code, 'SQLITE_CANTOPEN');
    return true;
  });
  rmSync(file, { recursive: true });
  const store = await openSqliteStore(dataDir);
  await store.close();

  const lockedOut = tempDir(t);
  mkdirSync(join(lockedOut, LOCK_FILE));
  await assert.rejects(openSqliteStore(lockedOut), { message: cannotOpen(join(lockedOut, LOCK_FILE), lockedOut, 'unable to open database file') });
});

test('a data dir that cannot be made (a path under a file) is named with IFLOW_DATA_DIR', async (t) => {
  const parent = tempDir(t);
  writeFileSync(join(parent, 'file'), '');
  const dataDir = join(parent, 'file', 'data');
  await assert.rejects(openSqliteStore(dataDir), {
    message: `cannot open the SQLite store in IFLOW_DATA_DIR=${dataDir}: ENOTDIR: not a directory, mkdir '${dataDir}' – is ${dataDir} a directory writable by this user (uid ${process.getuid!()})?`,
  });
});

test('a read-only data dir, empty or not, is named in the error, with the user who cannot write it', { skip: process.getuid?.() === 0 && 'root writes whatever the mode says' }, async (t) => {
  /** Runs `check` with `dir` read-only, then makes it writable again (so that it can be removed). */
  async function readOnly(dir: string, check: () => Promise<void>) {
    chmodSync(dir, 0o500);
    try {
      await check();
    } finally {
      chmodSync(dir, 0o700);
    }
  }
  const empty = tempDir(t);
  await readOnly(empty, () => assert.rejects(openSqliteStore(empty), { message: cannotOpen(join(empty, LOCK_FILE), empty, 'unable to open database file') }));

  const used = tempDir(t);
  await (await openSqliteStore(used)).close();
  await readOnly(used, () => assert.rejects(openSqliteStore(used), { message: cannotOpen(join(used, LOCK_FILE), used, 'attempt to write a readonly database') }));
});

test('iflow start on a data dir it cannot open exits 1 naming the file and IFLOW_DATA_DIR', async (t) => {
  const dataDir = tempDir(t);
  mkdirSync(join(dataDir, 'iflow.db'));
  const { code, stderr } = await runIflowStart({ IFLOW_DATA_DIR: dataDir, IFLOW_ADMIN_PASSWORD: 'open-test-password-1' });
  assert.equal(code, 1, stderr);
  assert.equal(stderr.split('\n')[0], `iflow: cannot start: ${cannotOpen(join(dataDir, 'iflow.db'), dataDir, 'unable to open database file')}`);
});

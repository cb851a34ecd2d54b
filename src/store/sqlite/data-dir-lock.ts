import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export const LOCK_FILE = 'iflow.lock';

/**
 * Holds the data dir for this store while it is open, so a second iflow process on the same dir (a second
 * `npm start`, two containers on one volume) refuses to start instead of sharing the SQLite file behind its
 * back: its caches of users and credentials would go stale, and both would refresh the same tokens.
 *
 * The lock is SQLite's own: an exclusive transaction on an empty database file, held until released. SQLite's
 * file locks are the operating system's, so they go with a process that dies (no stale lock file to clean up),
 * and SQLite also tells apart two connections of one process.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  const file = join(dataDir, LOCK_FILE);
  const lock = new Database(file);
  try {
    chmodSync(file, 0o600);
  } catch {
    // Another owner's file: it locks all the same.
  }
  try {
    lock.pragma('busy_timeout = 0');
    // Kept after the transaction would end, and taken at once by BEGIN EXCLUSIVE: readers are shut out too.
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock.close();
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') {
      throw new Error(`the data dir ${dataDir} is in use by another iflow process: stop it, or give this one its own IFLOW_DATA_DIR (several instances can share a PostgreSQL store: DATABASE_URL)`, {
        cause: err,
      });
    }
    throw err;
  }
  return {
    release() {
      if (lock.open) lock.close();
    },
  };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/types.ts';

/** Runs `run` on a SQLite store in a fresh temp dir, then closes the store and removes the dir. */
export async function withSqliteStore(run: (store: Store) => Promise<void>, prefix = 'iflow-store-'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = await openSqliteStore(dir);
  try {
    await run(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

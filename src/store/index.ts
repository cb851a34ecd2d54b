import type { Config } from '../config/index.ts';
import { openSqliteStore } from './sqlite/index.ts';
import type { Store } from './types.ts';

export type * from './types.ts';

/** The store the configuration asks for: PostgreSQL when DATABASE_URL is set, else SQLite in the data dir. */
export async function openStore(config: Pick<Config, 'dataDir' | 'databaseUrl'>): Promise<Store> {
  if (config.databaseUrl) {
    throw new Error('DATABASE_URL is set, but the PostgreSQL store is not available in this version yet; unset it to use the embedded SQLite store');
  }
  return openSqliteStore(config.dataDir);
}

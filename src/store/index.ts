import type { Config } from '../config/index.ts';
import { openPostgresStore } from './postgres/index.ts';
import { openSqliteStore } from './sqlite/index.ts';
import type { Store } from './types.ts';

export type * from './types.ts';

/**
 * The store the configuration asks for: PostgreSQL when DATABASE_URL is set, else SQLite in the data dir.
 * When PostgreSQL cannot be reached this rejects with an error naming user, host, port and database (never the password).
 */
export async function openStore(config: Pick<Config, 'dataDir' | 'databaseUrl'> & Partial<Pick<Config, 'databaseStatementTimeoutMs'>>): Promise<Store> {
  if (config.databaseUrl) return openPostgresStore(config.databaseUrl, { statementTimeoutMillis: config.databaseStatementTimeoutMs });
  return openSqliteStore(config.dataDir);
}

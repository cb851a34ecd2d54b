import pg from 'pg';
import type { PoolClient } from 'pg';
import { MESSAGE_LOG_COLUMNS, MESSAGE_LOG_JSON_FROM, credentialFromRow, messageLogFromRow, messageLogValues, oauthStateFromRow, userFromRow, type Row } from '../rows.ts';
import { compileFilter, compileOrderBy } from '../sql-filter.ts';
import { KeyedMutex } from '../keyed-mutex.ts';
import { Semaphore } from '../../semaphore.ts';
import { MAX_TIMER_MS } from '../../deadline.ts';
import { CHANGES_CHANNEL, POSTGRES_MIGRATIONS } from './migrations.ts';
import { ChangeListener } from './notifications.ts';
import { refuseNewerSchema } from '../schema-version.ts';
import type {
  ChangeWatcher,
  CredentialRecord,
  CredentialRepository,
  MessageLogField,
  MessageLogQuery,
  MessageLogRecord,
  MessageLogRepository,
  OAuthStateRecord,
  Store,
  UserRecord,
  UserRepository,
} from '../types.ts';



export interface PostgresStoreOptions {
  /** Most connections the pool opens. Default 10. */
  max?: number;
  /** How long to wait for a connection (new or from the pool) before failing. Default 10 s. */
  connectionTimeoutMillis?: number;
  /** How long withLock waits for another instance to release a credential's lock before failing; 0 waits forever. Default 120 s. */
  lockTimeoutMillis?: number;
  /**
   * Longest a statement may run on the server before PostgreSQL cancels it (statement_timeout; config's
   * IFLOW_PG_STATEMENT_TIMEOUT). Default 10 s. The other bounds follow from it: see `queryBounds`.
   */
  statementTimeoutMillis?: number;
}

/** The bounds on one statement of iflow's pooled connections (not of migrations, nor of withLock's wait). */
export interface QueryBounds {
  /** Server side: PostgreSQL cancels a statement running longer (SQLSTATE 57014). */
  statementTimeoutMillis: number;
  /** Server side: a statement waiting longer for a lock (a table locked by a migration or by hand) fails (55P03). */
  lockTimeoutMillis: number;
  /** Client side: no answer at all by then (a network that drops packets, a server that froze) fails the query. */
  queryTimeoutMillis: number;
}

/** Default statement_timeout of iflow's pooled connections. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
/** lock_timeout: a statement waiting for a lock gives up sooner than a slow one, so a locked table cannot hold the pool's connections. */
const LOCK_TIMEOUT_MS = 3_000;
/** A per-query query_timeout that never fires: setTimeout's longest delay (pg takes 0 as "use the client's"). */
const NO_CLIENT_TIMEOUT_MS = MAX_TIMER_MS;

/**
 * The bounds a statement timeout implies: lock waits end after 3 s (at most half the statement timeout), and the
 * client gives up waiting for an answer a little after the server would have cancelled the statement
 * (2 s later, at most the statement timeout again), so the server's own error wins whenever the server answers.
 */
export function queryBounds(statementTimeoutMillis = DEFAULT_STATEMENT_TIMEOUT_MS): QueryBounds {
  return {
    statementTimeoutMillis,
    lockTimeoutMillis: Math.min(LOCK_TIMEOUT_MS, Math.ceil(statementTimeoutMillis / 2)),
    queryTimeoutMillis: statementTimeoutMillis + Math.min(2_000, statementTimeoutMillis),
  };
}

/** A query with a client-side bound of its own: pg reads `query_timeout` from a query's config too (its types omit it). */
function boundedQuery(text: string, values: unknown[] | undefined, queryTimeoutMillis: number): pg.QueryConfig {
  const config: pg.QueryConfig & { query_timeout: number } = { text, values, query_timeout: queryTimeoutMillis };
  return config;
}

/** pg's error when a query got no answer within query_timeout: the connection is then unusable (its query may still run). */
const isReadTimeout = (err: unknown) => err instanceof Error && err.message === 'Query read timeout';

/** Single-bigint advisory key held (per transaction) while migrating: 'iflwmigr'. */
export const MIGRATION_LOCK_KEY = '7594302237618153330';
/** First key of the two-int advisory locks on credentials: 'iflw'. The two-int and bigint key spaces never collide. */
const CREDENTIAL_LOCK_CLASS = 0x69666c77;
/** Rows per INSERT of insertMany: 13 parameters a row stays far below PostgreSQL's 65535 per statement. */
const INSERT_CHUNK = 1000;

/** The message log columns that may be NULL: compileOrderBy places their nulls as SQLite does. */
const NULLABLE_FIELDS = new Set<MessageLogField>(['ApplicationMessageId', 'CustomStatus', 'LogEnd', 'Sender', 'Receiver']);

const placeholder = (n: number) => `$${n}`;
/**
 * PostgreSQL text cannot hold U+0000 (SQLite's can): one such character (say, in a script-set CustomStatus) would fail
 * the whole batch of message logs, so it is stored as U+FFFD. Inside the json columns JSON.stringify escapes it, which is fine.
 */
const withoutNul = (text: string) => (text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text);
const formatMillis = (ms: number) => (ms < 1000 || ms % 1000 !== 0 ? `${ms}ms` : `${ms / 1000}s`);

interface Checkout {
  client: PoolClient;
  /** The error the connection reported while checked out, if it broke. */
  lost(): Error | undefined;
  /** Back to the pool; with a reason (or when the connection broke) the connection is closed instead of reused. */
  release(destroy?: unknown): void;
}

/** One client out of the pool, listening for 'error' while out (pg-pool listens only while a client is idle, and an unheard 'error' crashes the process). */
async function checkout(pool: pg.Pool): Promise<Checkout> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (err: Error) => {
    lost = err;
  };
  client.on('error', onError);
  let released = false;
  return {
    client,
    lost: () => lost,
    release(destroy?: unknown) {
      if (released) return;
      released = true;
      client.removeListener('error', onError);
      const reason = lost ?? (destroy === undefined ? undefined : destroy instanceof Error ? destroy : new Error(String(destroy)));
      client.release(reason);
    },
  };
}

async function transaction<T>(pool: pg.Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const checkedOut = await checkout(pool);
  const { client } = checkedOut;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    checkedOut.release();
    return result;
  } catch (err) {
    // A query that got no answer in time still occupies the connection: a ROLLBACK would only wait behind it.
    if (isReadTimeout(err) || checkedOut.lost()) {
      checkedOut.release(err);
      throw err;
    }
    try {
      await client.query('ROLLBACK');
      checkedOut.release();
    } catch (rollbackError) {
      checkedOut.release(rollbackError);
    }
    throw err;
  }
}

/**
 * Applies the missing migrations in one transaction, under a transaction-level advisory lock so that instances
 * starting together take turns. Unbounded, unlike every other statement: waiting for another instance's
 * migration, or for a table an older instance still uses, and building an index on a large message log can each
 * take longer than the statement timeout, and a migration cut short would stop the start every time.
 */
async function migrate(pool: pg.Pool): Promise<void> {
  await transaction(pool, async (client) => {
    const unbounded = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => client.query<R>(boundedQuery(text, values, NO_CLIENT_TIMEOUT_MS));
    // SET LOCAL: only for this transaction, the connection goes back to the pool with its bounds.
    await unbounded('SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0');
    await unbounded(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await unbounded('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    const { rows } = await unbounded<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    refuseNewerSchema(applied, POSTGRES_MIGRATIONS);
    for (const migration of POSTGRES_MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await unbounded(migration.sql);
      await unbounded('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, new Date().toISOString()]);
    }
  });
}

/** The lock `users.exclusively` takes: credentials' advisory locks, under a name no credential can have (':'). */
const USERS_LOCK = ':users';

class PostgresUsers implements UserRepository {
  constructor(
    private readonly pool: pg.Pool,
    private readonly changes: ChangeListener,
    private readonly locks: Pick<PostgresCredentials, 'withLock'>,
  ) {}

  /** An advisory lock on a connection of its own: instances sharing the database take turns. */
  exclusively<T>(fn: () => Promise<T>): Promise<T> {
    return this.locks.withLock(USERS_LOCK, fn);
  }

  /** Changes by any instance (and by hand, in SQL) are announced by the users table's trigger. */
  watch(watcher: ChangeWatcher) {
    return this.changes.watch('users', watcher);
  }


  async get(name: string) {
    const { rows } = await this.pool.query('SELECT * FROM users WHERE name = $1', [name]);
    return rows[0] && userFromRow(rows[0]);
  }
  async list() {
    const { rows } = await this.pool.query('SELECT * FROM users ORDER BY name');
    return rows.map(userFromRow);
  }
  async create(user: UserRecord) {
    const { rowCount } = await this.pool.query(
      'INSERT INTO users (name, password_hash, roles, created_at, updated_at) VALUES ($1, $2, $3::json, $4, $5) ON CONFLICT (name) DO NOTHING',
      [user.name, user.passwordHash, JSON.stringify(user.roles), user.createdAt, user.updatedAt],
    );
    return rowCount === 1;
  }
  async update(user: UserRecord) {
    const { rowCount } = await this.pool.query('UPDATE users SET password_hash = $2, roles = $3::json, updated_at = $4 WHERE name = $1', [
      user.name,
      user.passwordHash,
      JSON.stringify(user.roles),
      user.updatedAt,
    ]);
    return rowCount === 1;
  }
  async delete(name: string) {
    const { rowCount } = await this.pool.query('DELETE FROM users WHERE name = $1', [name]);
    return rowCount === 1;
  }
  async count() {
    const { rows } = await this.pool.query<{ count: string }>('SELECT COUNT(*) AS count FROM users');
    return Number(rows[0].count);
  }
}


class PostgresMessageLogs implements MessageLogRepository {
  constructor(private readonly pool: pg.Pool) {}

  async insertMany(records: MessageLogRecord[]) {
    if (records.length === 0) return;
    // One statement cannot touch a row twice (ON CONFLICT … DO UPDATE): the last record of a guid wins, as with SQLite's INSERT OR REPLACE.
    const unique = [...new Map(records.map((record) => [record.MessageGuid, record])).values()];
    const chunks: MessageLogRecord[][] = [];
    for (let i = 0; i < unique.length; i += INSERT_CHUNK) chunks.push(unique.slice(i, i + INSERT_CHUNK));
    if (chunks.length === 1) {
      await this.insertChunk(this.pool, chunks[0]);
      return;
    }
    await transaction(this.pool, async (client) => {
      for (const chunk of chunks) await this.insertChunk(client, chunk);
    });
  }

  private async insertChunk(db: pg.Pool | PoolClient, records: MessageLogRecord[]) {
    const params: unknown[] = [];
    const tuples = records.map((record) => {
      const cells = messageLogValues(record).map((value, column) => {
        params.push(typeof value === 'string' && column < MESSAGE_LOG_JSON_FROM ? withoutNul(value) : value);
        return column < MESSAGE_LOG_JSON_FROM ? `$${params.length}` : `$${params.length}::json`;
      });
      return `(${cells.join(', ')})`;
    });
    const columns = MESSAGE_LOG_COLUMNS.map((column) => `"${column}"`).join(', ');
    const updates = MESSAGE_LOG_COLUMNS.filter((column) => column !== 'MessageGuid')
      .map((column) => `"${column}" = EXCLUDED."${column}"`)
      .join(', ');
    await db.query(`INSERT INTO message_logs (${columns}) VALUES ${tuples.join(', ')} ON CONFLICT ("MessageGuid") DO UPDATE SET ${updates}`, params);
  }

  async deleteOlderThan(before: string, limit: number) {
    const { rowCount } = await this.pool.query(
      'DELETE FROM message_logs WHERE "MessageGuid" IN (SELECT "MessageGuid" FROM message_logs WHERE "LogStart" < $1 ORDER BY "LogStart" LIMIT $2)',
      [before, limit],
    );
    return rowCount ?? 0;
  }

  async get(guid: string) {
    const { rows } = await this.pool.query('SELECT * FROM message_logs WHERE "MessageGuid" = $1', [guid]);
    return rows[0] && messageLogFromRow(rows[0]);
  }

  async query(query: MessageLogQuery) {
    const { where, params } = compileFilter(query.filter, placeholder);
    const page = this.pool.query(
      `SELECT * FROM message_logs ${where} ${compileOrderBy(query.orderBy, NULLABLE_FIELDS)} LIMIT ${placeholder(params.length + 1)} OFFSET ${placeholder(params.length + 2)}`,
      [...params, query.top, query.skip],
    );
    const total = query.count ? this.pool.query<{ count: string }>(`SELECT COUNT(*) AS count FROM message_logs ${where}`, params) : undefined;
    const results = (await page).rows.map(messageLogFromRow);
    if (!total) return { results };
    return { results, count: Number((await total).rows[0].count) };
  }
}

class PostgresCredentials implements CredentialRepository {
  private readonly locks = new KeyedMutex();
  /** Lock holders keep a connection for as long as `fn` runs; capping them leaves connections for the queries `fn` makes. */
  private readonly lockHolders: Semaphore;

  constructor(
    private readonly pool: pg.Pool,
    private readonly changes: ChangeListener,
    maxConnections: number,
    private readonly lockTimeoutMillis: number,
    /** The pool's query_timeout: added to the lock wait, the client's bound on the statement that waits. */
    private readonly queryTimeoutMillis: number,
  ) {
    this.lockHolders = new Semaphore(Math.max(1, Math.floor(maxConnections / 2)));
  }

  /** Each changed row (an admin's edit, another instance's token refresh) is announced by the credentials trigger. */
  watch(watcher: ChangeWatcher) {
    return this.changes.watch('credentials', watcher);
  }

  async get(name: string) {
    const { rows } = await this.pool.query('SELECT * FROM credentials WHERE name = $1', [name]);
    return rows[0] && credentialFromRow(rows[0]);
  }
  async list() {
    const { rows } = await this.pool.query('SELECT * FROM credentials ORDER BY name');
    return rows.map(credentialFromRow);
  }
  async create(record: CredentialRecord) {
    const { rowCount } = await this.pool.query(
      `INSERT INTO credentials (name, type, settings, secrets, state, version, created_at, updated_at)
       VALUES ($1, $2, $3::json, $4, $5::json, 1, $6, $7) ON CONFLICT (name) DO NOTHING`,
      [record.name, record.type, JSON.stringify(record.settings), record.secrets, JSON.stringify(record.state), record.createdAt, record.updatedAt],
    );
    return rowCount === 1;
  }
  async update(record: Omit<CredentialRecord, 'version'>, expectedVersion: number) {
    const { rows } = await this.pool.query(
      `UPDATE credentials SET type = $2, settings = $3::json, secrets = $4, state = $5::json, version = version + 1, updated_at = $6
       WHERE name = $1 AND version = $7 RETURNING *`,
      [record.name, record.type, JSON.stringify(record.settings), record.secrets, JSON.stringify(record.state), record.updatedAt, expectedVersion],
    );
    return rows[0] && credentialFromRow(rows[0]);
  }
  async delete(name: string) {
    const { rowCount } = await this.pool.query('DELETE FROM credentials WHERE name = $1', [name]);
    return rowCount === 1;
  }

  /**
   * In-process first (one caller per name queues here instead of holding a connection each), then a session-level
   * advisory lock on one dedicated connection for as long as `fn` runs, so instances sharing the database take turns.
   * The lock is released, and the connection returned, however `fn` ends; a connection that broke is destroyed,
   * which makes the server drop its locks.
   */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(name, () => this.lockHolders.run(() => this.holdAdvisoryLock(name, fn)));
  }

  private async holdAdvisoryLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const checkedOut = await checkout(this.pool);
    let key: number;
    try {
      key = await this.acquire(checkedOut.client, name);
    } catch (err) {
      // Whatever went wrong (lock_timeout, a broken connection, a failed COMMIT), closing the connection guarantees no lock stays behind.
      checkedOut.release(err);
      if ((err as { code?: string }).code === '55P03') {
        throw new Error(
          `Timed out after ${formatMillis(this.lockTimeoutMillis)} waiting for the lock on credential "${name}": another iflow instance holds it`,
          { cause: err },
        );
      }
      throw err;
    }
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await fn() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    try {
      const lost = checkedOut.lost();
      if (lost) throw lost;
      await checkedOut.client.query('SELECT pg_advisory_unlock($1, $2)', [CREDENTIAL_LOCK_CLASS, key]);
      checkedOut.release();
    } catch (unlockError) {
      // Closing the connection ends its session, and the server drops the session's locks with it.
      checkedOut.release(unlockError);
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * Takes the session-level lock; lock_timeout bounds the wait, not the connection's statement_timeout (the
   * transaction only scopes those settings: the lock outlives its commit).
   */
  private async acquire(client: PoolClient, name: string): Promise<number> {
    await client.query('BEGIN');
    // The key includes the schema, so iflow installations sharing a database in different schemas do not wait for each other.
    const { rows } = await client.query<{ key: number }>(
      `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', '0', true), hashtext(coalesce(current_schema(), '') || ':' || $2) AS key`,
      [String(this.lockTimeoutMillis), name],
    );
    const key = rows[0].key;
    const waitMillis = this.lockTimeoutMillis === 0 ? NO_CLIENT_TIMEOUT_MS : Math.min(NO_CLIENT_TIMEOUT_MS, this.lockTimeoutMillis + this.queryTimeoutMillis);
    await client.query(boundedQuery('SELECT pg_advisory_lock($1, $2)', [CREDENTIAL_LOCK_CLASS, key], waitMillis));
    await client.query('COMMIT');
    return key;
  }

  /** Also removes the states that expired unused (authorizations never completed). */
  async putOAuthState(record: OAuthStateRecord) {
    // expires_at is an ISO 8601 UTC timestamp (toISOString): compared byte-wise, text order is time order.
    await this.pool.query('DELETE FROM oauth_states WHERE expires_at COLLATE "C" < $1', [new Date().toISOString()]);
    await this.pool.query('INSERT INTO oauth_states (state, credential_name, code_verifier, expires_at) VALUES ($1, $2, $3, $4)', [
      record.state,
      record.credentialName,
      record.codeVerifier,
      record.expiresAt,
    ]);
  }
  async takeOAuthState(state: string) {
    const { rows } = await this.pool.query('DELETE FROM oauth_states WHERE state = $1 RETURNING *', [state]);
    const row = rows[0] as Row | undefined;
    return row && oauthStateFromRow(row);
  }
}

/**
 * PostgreSQL's "no schema has been selected to create in" (3F000) does not say which: the search_path the URL
 * asks for names a schema that does not exist, and creating it is the fix.
 */
function missingSchemaHint(err: unknown, databaseUrl: string): string {
  if ((err as { code?: unknown } | null)?.code !== '3F000') return '';
  let options = '';
  try {
    options = new URL(databaseUrl).searchParams.get('options') ?? '';
  } catch {
    // unparsable: no schema to name
  }
  // Tables go into the first schema of the path: name that one, unquoted ("NoPe" keeps its case in PostgreSQL).
  const first = /search_path\s*=\s*(\S+)/.exec(options)?.[1].split(',')[0].trim().replace(/^"(.*)"$/, '$1');
  const which = first ? `the search_path schema "${first}" does not exist` : 'no schema of the search_path exists';
  return ` (${which}: create it with CREATE SCHEMA, or name an existing one with ?options=-c%20search_path%3D<schema>)`;
}

/** A URL part decoded, or as written when it holds a malformed percent-escape (decodeURIComponent throws "URI malformed"). */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** `user@host:port/database` from a connection URL: what error messages may show (never the password). */
export function describeDatabaseUrl(databaseUrl: string): string {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return 'an unparsable DATABASE_URL (expected postgres://user:password@host:port/database)';
  }
  const host = url.searchParams.get('host') || decoded(url.hostname) || 'localhost';
  const port = url.searchParams.get('port') || url.port || '5432';
  const database = decoded(url.pathname.replace(/^\//, '')) || url.searchParams.get('dbname') || '';
  const user = decoded(url.username);
  return `${user ? `${user}@` : ''}${host}:${port}${database ? `/${database}` : ''}`;
}

/** An error's own message; Node reports a refused `localhost` (tried on ::1 and 127.0.0.1) as an AggregateError without one. */
function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(reasonOf).join('; ');
  if (err instanceof Error) return err.message || (err as { code?: string }).code || err.name;
  return String(err);
}

function redact(text: string, databaseUrl: string): string {
  let password = '';
  try {
    password = new URL(databaseUrl).password;
  } catch {
    return text;
  }
  if (!password) return text;
  let out = text;
  for (const secret of new Set([password, decoded(password)])) out = out.split(secret).join('***');
  return out;
}

/**
 * Opens the PostgreSQL store at `databaseUrl` (postgres://user:password@host:port/database[?options=…]) and migrates
 * it to the newest schema. Tables live in the first schema of the search_path (`?options=-c%20search_path%3Dname`).
 * Fails with an error that names the server (not the password) when it cannot connect or migrate.
 */
export async function openPostgresStore(databaseUrl: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const max = options.max ?? 10;
  const bounds = queryBounds(options.statementTimeoutMillis);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'iflow',
    // A slow statement or a locked table must not hold the pool's connections (and with them every login and
    // the admin API) for as long as it lasts: the server cancels it (503 STORE_UNAVAILABLE, send again).
    // Startup parameters, so they hold for every statement of the session. No idle_in_transaction_session_timeout:
    // withLock's connection holds its advisory lock outside any transaction, and never idles inside one.
    statement_timeout: bounds.statementTimeoutMillis,
    lock_timeout: bounds.lockTimeoutMillis,
    // A network that drops packets leaves the connection open and the server's cancel unheard: the client gives up too.
    query_timeout: bounds.queryTimeoutMillis,
    // And the operating system notices a connection that died without a word (a NAT or firewall forgot it).
    keepAlive: true,
  });
  // Without a listener, an idle connection dropped by the server would crash the process; the pool replaces it.
  pool.on('error', () => {});
  let schema: string;
  try {
    await migrate(pool);
    // Where the tables are: the schema whose changes to users and credentials are announced (migration 4).
    schema = (await pool.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0].schema;
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`Cannot open the PostgreSQL store at ${describeDatabaseUrl(databaseUrl)}: ${redact(reasonOf(err), databaseUrl)}${missingSchemaHint(err, databaseUrl)}`, { cause: err });
  }
  const changes = new ChangeListener(databaseUrl, CHANGES_CHANNEL, schema, (err) => redact(reasonOf(err), databaseUrl));
  const credentials = new PostgresCredentials(pool, changes, max, options.lockTimeoutMillis ?? 120_000, bounds.queryTimeoutMillis);
  let closed = false;
  return {
    kind: 'postgres',
    settings: { database: describeDatabaseUrl(databaseUrl), schema },
    users: new PostgresUsers(pool, changes, credentials),
    messageLogs: new PostgresMessageLogs(pool),
    credentials,
    async close() {
      if (closed) return;
      closed = true;
      await changes.close();
      await pool.end();
    },
  };
}

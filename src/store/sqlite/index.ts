import Database from 'better-sqlite3';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MESSAGE_LOG_COLUMNS, credentialFromRow, messageLogFromRow, messageLogValues, oauthStateFromRow, userFromRow, type Row } from '../rows.ts';
import { compileFilter, compileOrderBy } from '../sql-filter.ts';
import { KeyedMutex } from '../keyed-mutex.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { refuseNewerSchema } from '../schema-version.ts';
import { SqliteBatchWriter } from './batch-writer.ts';
import { LOCK_FILE, lockDataDir } from './data-dir-lock.ts';
import { openFailure } from './open-error.ts';
import { MAIN_BUSY_TIMEOUT_MS, whenUnlocked } from './busy.ts';
import type {
  CredentialRecord,
  CredentialRepository,
  MessageLogQuery,
  MessageLogRecord,
  MessageLogRepository,
  OAuthStateRecord,
  Store,
  UserRecord,
  UserRepository,
} from '../types.ts';



function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const applied = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
  refuseNewerSchema(applied, SQLITE_MIGRATIONS);
  for (const migration of SQLITE_MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        new Date().toISOString(),
      );
    })();
  }
}

/** users.watch / credentials.watch: one process owns the file and drops its own caches on its own changes. */
const nothingToWatch = () => () => {};

class SqliteUsers implements UserRepository {
  readonly watch = nothingToWatch;
  private readonly byName;
  private readonly all;
  private readonly insert;
  private readonly change;
  private readonly remove;
  private readonly total;

  /** One process owns the file: turns within it are enough. */
  private readonly turns = new KeyedMutex();

  constructor(db: Database.Database) {
    this.byName = db.prepare('SELECT * FROM users WHERE name = ?');
    this.all = db.prepare('SELECT * FROM users ORDER BY name');
    this.insert = db.prepare(
      'INSERT INTO users (name, password_hash, roles, created_at, updated_at) VALUES (@name, @passwordHash, @roles, @createdAt, @updatedAt) ON CONFLICT(name) DO NOTHING',
    );
    this.change = db.prepare('UPDATE users SET password_hash = @passwordHash, roles = @roles, updated_at = @updatedAt WHERE name = @name');
    this.remove = db.prepare('DELETE FROM users WHERE name = ?');
    this.total = db.prepare('SELECT COUNT(*) FROM users').pluck();
  }


  async get(name: string) {
    const row = (await whenUnlocked(() => this.byName.get(name))) as Row | undefined;
    return row && userFromRow(row);
  }
  async list() {
    return ((await whenUnlocked(() => this.all.all())) as Row[]).map(userFromRow);
  }
  async create(user: UserRecord) {
    const row = { ...user, roles: JSON.stringify(user.roles) };
    return (await whenUnlocked(() => this.insert.run(row))).changes === 1;
  }
  async update(user: UserRecord) {
    const row = { ...user, roles: JSON.stringify(user.roles) };
    return (await whenUnlocked(() => this.change.run(row))).changes === 1;
  }
  async delete(name: string) {
    return (await whenUnlocked(() => this.remove.run(name))).changes === 1;
  }
  exclusively<T>(fn: () => Promise<T>): Promise<T> {
    return this.turns.run('users', fn);
  }
  async count() {
    return (await whenUnlocked(() => this.total.get())) as number;
  }
}



/** The oldest rows first, found through the LogStart index. */
const DELETE_OLDEST = 'DELETE FROM message_logs WHERE rowid IN (SELECT rowid FROM message_logs WHERE "LogStart" < ? ORDER BY "LogStart" LIMIT ?)';

class SqliteMessageLogs implements MessageLogRepository {
  private readonly byGuid;

  constructor(
    private readonly db: Database.Database,
    private readonly writer: SqliteBatchWriter,
  ) {
    this.byGuid = db.prepare('SELECT * FROM message_logs WHERE "MessageGuid" = ?');
  }

  /** Written by the writer thread; resolves once the batch is committed (and readable here). */
  async insertMany(records: MessageLogRecord[]) {
    if (records.length > 0) await this.writer.write(records.map(messageLogValues));
  }
  /** On the writer thread: a delete of thousands of rows and their index entries would stall the event loop here. */
  async deleteOlderThan(before: string, limit: number) {
    return this.writer.run(DELETE_OLDEST, [before, limit]);
  }
  async get(guid: string) {
    const row = (await whenUnlocked(() => this.byGuid.get(guid))) as Row | undefined;
    return row && messageLogFromRow(row);
  }
  async query(query: MessageLogQuery) {
    const { where, params } = compileFilter(query.filter, () => '?');
    const sql = `SELECT * FROM message_logs ${where} ${compileOrderBy(query.orderBy)} LIMIT ? OFFSET ?`;
    const rows = (await whenUnlocked(() => this.db.prepare(sql).all(...params, query.top, query.skip))) as Row[];
    const results = rows.map(messageLogFromRow);
    if (!query.count) return { results };
    const count = (await whenUnlocked(() => this.db.prepare(`SELECT COUNT(*) FROM message_logs ${where}`).pluck().get(...params))) as number;
    return { results, count };
  }
}

class SqliteCredentials implements CredentialRepository {
  readonly watch = nothingToWatch;
  private readonly locks = new KeyedMutex();
  private readonly byName;
  private readonly all;
  private readonly insert;
  private readonly change;
  private readonly remove;
  private readonly insertState;
  private readonly purgeStates;
  private readonly takeState;
  private readonly putState: (record: OAuthStateRecord) => void;

  constructor(db: Database.Database) {
    this.byName = db.prepare('SELECT * FROM credentials WHERE name = ?');
    this.all = db.prepare('SELECT * FROM credentials ORDER BY name');
    this.insert = db.prepare(
      `INSERT INTO credentials (name, type, settings, secrets, state, version, created_at, updated_at)
       VALUES (@name, @type, @settings, @secrets, @state, 1, @createdAt, @updatedAt) ON CONFLICT(name) DO NOTHING`,
    );
    this.change = db.prepare(
      `UPDATE credentials SET type = @type, settings = @settings, secrets = @secrets, state = @state, version = version + 1, updated_at = @updatedAt
       WHERE name = @name AND version = @expectedVersion`,
    );
    this.remove = db.prepare('DELETE FROM credentials WHERE name = ?');
    this.insertState = db.prepare(
      'INSERT INTO oauth_states (state, credential_name, code_verifier, expires_at) VALUES (@state, @credentialName, @codeVerifier, @expiresAt)',
    );
    // expires_at is an ISO 8601 UTC timestamp (toISOString), so text order is time order.
    this.purgeStates = db.prepare('DELETE FROM oauth_states WHERE expires_at < ?');
    this.takeState = db.prepare('DELETE FROM oauth_states WHERE state = ? RETURNING *');
    // One transaction (one commit, retried whole), taking the write lock at its start: IMMEDIATE.
    this.putState = db.transaction((record: OAuthStateRecord) => {
      this.purgeStates.run(new Date().toISOString());
      this.insertState.run(record);
    }).immediate;
  }


  private static toRow(record: Omit<CredentialRecord, 'version'>): Row {
    return { ...record, settings: JSON.stringify(record.settings), state: JSON.stringify(record.state) };
  }

  async get(name: string) {
    const row = (await whenUnlocked(() => this.byName.get(name))) as Row | undefined;
    return row && credentialFromRow(row);
  }
  async list() {
    return ((await whenUnlocked(() => this.all.all())) as Row[]).map(credentialFromRow);
  }
  async create(record: CredentialRecord) {
    const row = SqliteCredentials.toRow(record);
    return (await whenUnlocked(() => this.insert.run(row))).changes === 1;
  }
  async update(record: Omit<CredentialRecord, 'version'>, expectedVersion: number) {
    // Retried alone: the update and the read after it are two calls, so a busy read never runs the update twice.
    const row = { ...SqliteCredentials.toRow(record), expectedVersion };
    const changed = (await whenUnlocked(() => this.change.run(row))).changes === 1;
    return changed ? this.get(record.name) : undefined;
  }
  async delete(name: string) {
    return (await whenUnlocked(() => this.remove.run(name))).changes === 1;
  }
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    // One process owns an SQLite file, so an in-process lock is the whole story here.
    return this.locks.run(name, fn);
  }
  /** Also removes the states that expired unused (authorizations never completed). */
  async putOAuthState(record: OAuthStateRecord) {
    await whenUnlocked(() => this.putState(record));
  }
  async takeOAuthState(state: string) {
    const row = (await whenUnlocked(() => this.takeState.get(state))) as Row | undefined;
    return row && oauthStateFromRow(row);
  }
}

/** PRAGMA synchronous answers a number. */
const SYNCHRONOUS_MODES: Record<number, string> = { 0: 'off', 1: 'normal', 2: 'full', 3: 'extra' };
const synchronousMode = (value: number) => SYNCHRONOUS_MODES[value] ?? 'unknown';

/**
 * Opens (creating when missing) `iflow.db` in the data dir, in WAL mode, migrated to the newest schema. The data
 * dir is locked while the store is open: a second process on it fails here, in words.
 */
export async function openSqliteStore(dataDir: string): Promise<Store> {
  let dataDirLock: { release(): void };
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw openFailure(err, dataDir, dataDir);
  }
  try {
    dataDirLock = lockDataDir(dataDir);
  } catch (err) {
    throw openFailure(err, join(dataDir, LOCK_FILE), dataDir);
  }
  try {
    return await openLocked(dataDir, dataDirLock);
  } catch (err) {
    dataDirLock.release();
    throw err;
  }
}

async function openLocked(dataDir: string, dataDirLock: { release(): void }): Promise<Store> {
  const file = join(dataDir, 'iflow.db');
  let db: Database.Database;
  try {
    // A short busy timeout: a longer lock is waited for between tries (whenUnlocked), not on the event loop.
    db = new Database(file, { timeout: MAIN_BUSY_TIMEOUT_MS });
  } catch (err) {
    throw openFailure(err, file, dataDir);
  }
  try {
    return await openOnConnection(db, file, dataDirLock);
  } catch (err) {
    // Whatever failed (a file that is not a database, a migration, the writer thread), the connection goes
    // with the lock: a caller that goes on, or retries, must not keep iflow.db open.
    db.close();
    // A read-only file or folder shows at the first write (the WAL switch, a migration).
    throw openFailure(err, file, dataDir);
  }
}

async function openOnConnection(db: Database.Database, file: string, dataDirLock: { release(): void }): Promise<Store> {
  // Owner only, like the data dir: it holds message logs and credentials' state (their secrets encrypted).
  // Set before WAL mode: SQLite gives the -wal and -shm files the database file's mode. A file of another
  // owner (a volume restored, an image once run as root) cannot be changed: it opens as it is, and the
  // 'store opened' line shows its mode.
  try {
    chmodSync(file, 0o600);
  } catch {
    // shown below as fileMode
  }
  // Like every statement on this connection, waiting for another connection's lock without stalling the event loop.
  await whenUnlocked(() => db.pragma('journal_mode = WAL'));
  // This connection writes users, credentials and OAuth states: rare, and each must survive a power cut
  // (where the server rotates refresh tokens, losing the new one can end the grant), so every commit is
  // synced. Message logs are written by the writer thread's own connection at NORMAL: batched, many, and
  // only the last moments' can be lost.
  db.pragma('synchronous = FULL');
  // Retried whole: migrations applied before a busy one are skipped the next time.
  await whenUnlocked(() => migrate(db));
  const writer = new SqliteBatchWriter(file, { table: 'message_logs', columns: MESSAGE_LOG_COLUMNS });
  let writerSettings: { synchronous: number };
  try {
    writerSettings = await writer.opened;
  } catch (err) {
    throw new Error(`the message log writer could not open ${file}: ${(err as Error).message}`, { cause: err });
  }
  return {
    kind: 'sqlite',
    // Read back from each connection (what it really does, not what was asked): the main one, and the writer
    // thread's, which writes message logs.
    settings: {
      file,
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      synchronous: synchronousMode(db.pragma('synchronous', { simple: true }) as number),
      messageLogSynchronous: synchronousMode(writerSettings.synchronous),
      fileMode: (statSync(file).mode & 0o777).toString(8).padStart(4, '0'),
    },
    users: new SqliteUsers(db),
    messageLogs: new SqliteMessageLogs(db, writer),
    credentials: new SqliteCredentials(db),
    async close() {
      await writer.close();
      if (db.open) db.close();
      dataDirLock.release();
    },
  };
}

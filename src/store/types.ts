/**
 * The store: one async interface over SQLite (embedded default) or PostgreSQL.
 * Callers see repositories by concern; no SQL leaks out of src/store.
 */

export interface UserRecord {
  name: string;
  /** scrypt hash in the form produced by src/security/passwords.ts */
  passwordHash: string;
  roles: string[];
  createdAt: string;
  updatedAt: string;
}

export interface UserRepository {
  get(name: string): Promise<UserRecord | undefined>;
  list(): Promise<UserRecord[]>;
  /** false when a user of that name exists already */
  create(user: UserRecord): Promise<boolean>;
  /** false when there is no such user */
  update(user: UserRecord): Promise<boolean>;
  delete(name: string): Promise<boolean>;
  count(): Promise<number>;
  /**
   * Tells `watcher` when users may have been changed by another process sharing the store (PostgreSQL), so cached
   * logins can be dropped there too; returns the unsubscribe. A store one process owns (SQLite) never calls it.
   */
  watch(watcher: ChangeWatcher): () => void;
  /**
   * Runs `fn` while no other `exclusively` of users runs, across instances where the store is shared (PostgreSQL):
   * a change that reads, checks (the last admin) and writes cannot interleave with another.
   */
  exclusively<T>(fn: () => Promise<T>): Promise<T>;
}

export interface ChangeWatcher {
  /**
   * The record `name` changed elsewhere; without a name, any may have (a statement on many rows, or the connection
   * to the announcements is back after a loss, when some may have been missed).
   */
  changed(name?: string): void;
  /** The announcements cannot be heard for now; they are retried (told at each failed try). */
  trouble?(err: Error): void;
  /** The announcements are heard again after `trouble` (told once, after `changed()` without a name). */
  recovered?(): void;
}

export type MessageStatus = 'PROCESSING' | 'COMPLETED' | 'RETRY' | 'FAILED' | 'ESCALATED' | 'CANCELLED';

export interface StepTiming {
  name: string;
  kind: string;
  start: string;
  durationMs: number;
  status: 'COMPLETED' | 'FAILED';
  /** How many requests an http step sent, when more than one (retries, a resend with a refreshed token); absent for one. */
  attempts?: number;
}

export interface MessageError {
  step?: string;
  code: string;
  message: string;
  receiverStatus?: number;
  /** Graph's request-id, when Graph answered: what Microsoft support asks for. */
  requestId?: string;
}

/** A message processing log record, in CPI's field names. */
export interface MessageLogRecord {
  MessageGuid: string;
  CorrelationId: string;
  ApplicationMessageId: string | null;
  IntegrationFlowName: string;
  Status: MessageStatus;
  CustomStatus: string | null;
  LogStart: string;
  LogEnd: string | null;
  Sender: string | null;
  Receiver: string | null;
  DurationMs: number;
  Steps: StepTiming[];
  /** `JSON.stringify(Steps)`, when whoever built the record has it already: stores write it instead of serializing again. Never served. */
  StepsJson?: string;
  Error: MessageError | null;
}

/** Fields a message log query can filter and order by. */
export const MESSAGE_LOG_FIELDS = [
  'MessageGuid',
  'CorrelationId',
  'ApplicationMessageId',
  'IntegrationFlowName',
  'Status',
  'CustomStatus',
  'LogStart',
  'LogEnd',
  'Sender',
  'Receiver',
  'DurationMs',
] as const;
export type MessageLogField = (typeof MESSAGE_LOG_FIELDS)[number];

export type ComparisonOperator = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le';

/** A parsed $filter: comparisons joined by and / or. Values of date fields are ISO strings. */
export type FilterExpression =
  | { kind: 'logical'; operator: 'and' | 'or'; left: FilterExpression; right: FilterExpression }
  | { kind: 'comparison'; operator: ComparisonOperator; field: MessageLogField; value: string | number | null };

export interface MessageLogQuery {
  filter?: FilterExpression;
  orderBy: { field: MessageLogField; direction: 'asc' | 'desc' }[];
  top: number;
  skip: number;
  count: boolean;
}

export interface MessageLogRepository {
  insertMany(records: MessageLogRecord[]): Promise<void>;
  get(guid: string): Promise<MessageLogRecord | undefined>;
  query(query: MessageLogQuery): Promise<{ results: MessageLogRecord[]; count?: number }>;
  /** Deletes up to `limit` of the oldest records whose LogStart is before `before` (ISO); resolves to how many it deleted. */
  deleteOlderThan(before: string, limit: number): Promise<number>;
}

/** A stored credential. Secrets travel only inside `secrets`, encrypted by src/security/crypto.ts. */
export interface CredentialRecord {
  name: string;
  type: string;
  /** The credential's non-secret settings (JSON). */
  settings: Record<string, unknown>;
  /** Encrypted JSON of the secret fields (client secret, password, tokens). */
  secrets: string;
  /** Non-secret runtime state: status, user, expiresAt, lastRefreshAt, lastError… */
  state: Record<string, unknown>;
  /** Bumped on every write; updates compare it so concurrent writers never clobber each other. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface OAuthStateRecord {
  state: string;
  credentialName: string;
  /** Encrypted PKCE verifier. */
  codeVerifier: string;
  expiresAt: string;
}

export interface CredentialRepository {
  get(name: string): Promise<CredentialRecord | undefined>;
  list(): Promise<CredentialRecord[]>;
  /** false when a credential of that name exists already */
  create(record: CredentialRecord): Promise<boolean>;
  /** Writes when the stored version equals `expectedVersion`; returns the new record, or undefined on a lost race. */
  update(record: Omit<CredentialRecord, 'version'>, expectedVersion: number): Promise<CredentialRecord | undefined>;
  delete(name: string): Promise<boolean>;
  /** Runs `fn` while holding the credential's refresh lock (across instances where the store supports it). */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  putOAuthState(record: OAuthStateRecord): Promise<void>;
  /** Removes and returns the state: a state can be taken once. */
  takeOAuthState(state: string): Promise<OAuthStateRecord | undefined>;
  /** Like users.watch: tells `watcher` of credentials changed by another process sharing the store, by name. */
  watch(watcher: ChangeWatcher): () => void;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives and how it is kept, for the start-up log line: no secret (a database URL's password) in it. */
  readonly settings: Readonly<Record<string, string>>;
  readonly users: UserRepository;
  readonly messageLogs: MessageLogRepository;
  readonly credentials: CredentialRepository;
  close(): Promise<void>;
}

import pg from 'pg';
import type { ChangeWatcher } from '../types.ts';

const FIRST_RETRY_MS = 500;
/** Short: while it is not listening, another instance's change of a user goes unheard (a cached login lives on). */
const MAX_RETRY_MS = 5_000;
/**
 * An idle connection can die without a word (a NAT or load balancer forgets it): it is asked something this
 * often, and a question not answered within QUERY_TIMEOUT_MS counts as a lost connection.
 */
const HEARTBEAT_MS = 30_000;
const QUERY_TIMEOUT_MS = 10_000;

/** The application_name of an installation's listening connection (pg_stat_activity). */
export function listenerName(schema: string): string {
  // PostgreSQL keeps 63 bytes of it.
  return `iflow-listen ${schema}`.slice(0, 63);
}

/** A table whose changes migration 4's triggers announce. */
export type WatchedTable = 'users' | 'credentials';

/**
 * Hears the changes the users and credentials triggers announce (migration 4: `pg_notify(channel,
 * '{"schema","table","name"}')`), on one connection of its own, opened when the first watcher subscribes
 * (a pooled connection cannot LISTEN: the pool hands it to queries and closes it when idle). Only
 * announcements for `schema` count: the channel is shared by every installation in the database. A lost
 * connection is reopened with a growing pause (0.5 s, doubling up to 5 s; watchers hear `trouble` at each
 * failed try, also when a heartbeat goes unanswered: an idle connection can die silently). Whenever a
 * connection starts listening, the first included, every watcher is told that anything may have
 * changed, since announcements may have been missed until then; after a failed try, also `recovered`.
 */
export class ChangeListener {
  private readonly watchers = new Map<WatchedTable, Set<ChangeWatcher>>();
  private client: pg.Client | undefined;
  /** The connection being opened, and its attempt: close() ends it rather than wait for its timeouts. */
  private connecting: pg.Client | undefined;
  private opening: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  /**
   * Whether announcements may have been missed: before the first connection listens (a watcher may have cached
   * something meanwhile) and after one failed. The next connection to listen then tells every watcher.
   */
  private missed = true;
  /** Whether a try failed since the last connection that listened: the next one to listen tells `recovered`. */
  private troubled = false;
  private closed = false;

  /** `reasonOf` turns a connection error into what watchers may log (pg's messages can quote the URL). */
  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly schema: string,
    private readonly reasonOf: (err: unknown) => string,
  ) {}

  /** Subscribes to the changes of `table`; the returned function unsubscribes. */
  watch(table: WatchedTable, watcher: ChangeWatcher): () => void {
    let set = this.watchers.get(table);
    if (!set) this.watchers.set(table, (set = new Set()));
    set.add(watcher);
    if (!this.client && !this.opening && !this.retry && !this.closed) this.open();
    return () => set.delete(watcher);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    this.connecting?.end().catch(() => undefined);
    await this.opening;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private open(): void {
    this.opening = this.connect().finally(() => {
      this.opening = undefined;
    });
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      // Per schema, so a DBA (and a test) can tell the installations' listeners apart.
      application_name: listenerName(this.schema),
      connectionTimeoutMillis: QUERY_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      keepAlive: true,
    });
    this.connecting = client;
    client.on('notification', (message) => {
      if (message.channel === this.channel && message.payload) this.announced(message.payload);
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('the server closed the connection')));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.failed(err);
      return;
    } finally {
      this.connecting = undefined;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.heartbeat = setInterval(() => {
      client.query('SELECT 1').catch((err: Error) => this.lost(client, err));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    this.retryMs = FIRST_RETRY_MS;
    if (this.missed) {
      this.missed = false;
      this.tellEvery((watcher) => watcher.changed());
    }
    if (this.troubled) {
      this.troubled = false;
      this.tellEvery((watcher) => watcher.recovered?.());
    }
  }

  private announced(payload: string): void {
    let change: { schema?: unknown; table?: unknown; name?: unknown };
    try {
      change = JSON.parse(payload) as typeof change;
    } catch {
      return; // not iflow's
    }
    if (change.schema !== this.schema) return;
    const set = this.watchers.get(change.table as WatchedTable);
    if (!set) return;
    const name = typeof change.name === 'string' ? change.name : undefined;
    for (const watcher of set) watcher.changed(name);
  }

  /** Calls every watcher, of every table. */
  private tellEvery(call: (watcher: ChangeWatcher) => void): void {
    for (const set of this.watchers.values()) for (const watcher of set) call(watcher);
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.heartbeat);
    client.end().catch(() => undefined);
    this.failed(err);
  }

  private failed(err: unknown): void {
    if (this.closed) return;
    this.missed = true;
    this.troubled = true;
    const reason = new Error(this.reasonOf(err));
    this.tellEvery((watcher) => watcher.trouble?.(reason));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed) this.open();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }
}

import pg from 'pg';
import type { ChangeWatcher } from '../types.ts';

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/** A table whose changes migration 4's triggers announce. */
export type WatchedTable = 'users' | 'credentials';

/**
 * Hears the changes the users and credentials triggers announce (migration 4: `pg_notify(channel,
 * '{"schema","table","name"}')`), on one connection of its own, opened when the first watcher subscribes
 * (a pooled connection cannot LISTEN: the pool hands it to queries and closes it when idle). Only
 * announcements for `schema` count: the channel is shared by every installation in the database. A lost
 * connection is reopened with a growing pause (0.5 s, doubling up to 30 s; watchers hear `trouble` at each
 * failed try). Whenever a connection starts listening, the first included, every watcher is told that
 * anything may have changed, since announcements may have been missed until then.
 */
export class ChangeListener {
  private readonly watchers = new Map<WatchedTable, Set<ChangeWatcher>>();
  private client: pg.Client | undefined;
  private opening: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  /**
   * Whether announcements may have been missed: before the first connection listens (a watcher may have cached
   * something meanwhile) and after one failed. The next connection to listen then tells every watcher.
   */
  private missed = true;
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
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'iflow-listen', connectionTimeoutMillis: 10_000 });
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
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = FIRST_RETRY_MS;
    if (this.missed) {
      this.missed = false;
      for (const set of this.watchers.values()) for (const watcher of set) watcher.changed();
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

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    this.failed(err);
  }

  private failed(err: unknown): void {
    if (this.closed) return;
    this.missed = true;
    const reason = new Error(this.reasonOf(err));
    for (const set of this.watchers.values()) for (const watcher of set) watcher.trouble?.(reason);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed) this.open();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }
}

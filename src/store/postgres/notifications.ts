import pg from 'pg';
import type { ChangeWatcher } from '../types.ts';

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/**
 * Hears the changes a table's trigger announces with `pg_notify(channel, schema)` (migration 4), on one
 * connection of its own, opened when the first watcher subscribes (a pooled connection cannot LISTEN: the
 * pool hands it to queries and closes it when idle). Only announcements for `schema` count: the channel is
 * shared by every installation in the database. A lost connection is reopened with a growing pause, and the
 * watchers are told a change happened once it is back, since any may have been missed meanwhile; while it is
 * down they hear `trouble` at each failed try (0.5 s apart, doubling up to 30 s).
 */
export class ChangeListener {
  private readonly watchers = new Set<ChangeWatcher>();
  private client: pg.Client | undefined;
  private opening: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  /** Set once a connection failed: the next one to open tells the watchers (they may have missed changes). */
  private missed = false;
  private closed = false;

  /** `reasonOf` turns a connection error into what watchers may log (pg's messages can quote the URL). */
  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly schema: string,
    private readonly reasonOf: (err: unknown) => string,
  ) {}

  /** Subscribes; the returned function unsubscribes. */
  watch(watcher: ChangeWatcher): () => void {
    this.watchers.add(watcher);
    if (!this.client && !this.opening && !this.retry) this.open();
    return () => this.watchers.delete(watcher);
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
      if (message.channel === this.channel && message.payload === this.schema) this.tell((watcher) => watcher.changed());
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
      this.tell((watcher) => watcher.changed());
    }
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
    this.tell((watcher) => watcher.trouble?.(reason));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed) this.open();
    }, this.retryMs);
    this.retry.unref();
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }

  private tell(call: (watcher: ChangeWatcher) => void): void {
    for (const watcher of this.watchers) call(watcher);
  }
}

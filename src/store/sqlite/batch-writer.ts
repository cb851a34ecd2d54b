import { Worker } from 'node:worker_threads';

/** The writer's durability: NORMAL (not FULL like the main connection), since in WAL mode a power cut can lose the last batches, never corrupt the file. */
const BATCH_WRITER_SYNCHRONOUS = 'normal';

/**
 * An error the thread reported, with SQLite's code as it had it (SQLITE_BUSY, …): store/unavailable.ts tells an
 * outage by it, and the log shows it.
 */
function threadError(message: string, code: string | undefined): Error {
  const err = new Error(message);
  return code === undefined ? err : Object.assign(err, { code });
}

/**
 * Inserts batches of rows into the SQLite file from a worker thread (batch-writer.mjs) with its own
 * connection: the message-log hot path then costs the main thread a postMessage, not the inserts.
 * Other bulk writes (deleting old message logs) run there too, in order with the batches.
 */
export class SqliteBatchWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (changes: number) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  /** Why the thread is gone, once it is (an error in it, or its exit). */
  private stopped: Error | undefined;

  /**
   * Rows are upserted (INSERT OR REPLACE) into `table`, each row an array of SQL values in `columns`
   * order, bound by position (named parameters looked each up on a row object, which doubled an
   * insert's cost). Arrays of plain values also cost a fraction of objects to pass to the thread.
   */
  constructor(file: string, layout: { table: string; columns: readonly string[] }) {
    const { table, columns } = layout;
    const sql = `INSERT OR REPLACE INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
    this.worker = new Worker(new URL('./batch-writer.mjs', import.meta.url), { workerData: { file, sql, synchronous: BATCH_WRITER_SYNCHRONOUS } });
    let opened!: (settings: { synchronous: number }) => void;
    let failed!: (err: Error) => void;
    this.opened = new Promise((resolve, reject) => {
      opened = resolve;
      failed = reject;
    });
    this.worker.on('message', ({ id, error, code, changes, ...rest }: { id: number; error?: string; code?: string; changes?: number; opened?: { synchronous: number }; openFailed?: string }) => {
      if (rest.openFailed !== undefined) {
        this.stopped = threadError(rest.openFailed, code);
        failed(this.stopped);
        return;
      }
      if (rest.opened) {
        opened(rest.opened);
        if (this.waiting.size === 0) this.worker.unref();
        return;
      }
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      if (this.waiting.size === 0) this.worker.unref();
      if (error) waiter?.reject(threadError(error, code));
      else waiter?.resolve(changes ?? 0);
    });
    this.worker.on('error', (thrown: unknown) => {
      // What the thread threw arrives cloned, a SqliteError as a plain object without its message.
      const err = thrown instanceof Error ? thrown : new Error(`the SQLite writer thread failed: ${JSON.stringify(thrown)}`);
      this.stopped ??= err;
      failed(err);
      this.failAll(err);
    });
    this.worker.on('exit', (code) => {
      const err = new Error(`the SQLite writer thread stopped (exit code ${code})`);
      this.stopped ??= err;
      failed(err);
      this.failAll(err);
    });
  }

  /** Resolves once the thread's connection is open, with its `PRAGMA synchronous` as read back; rejects if it cannot open. */
  readonly opened: Promise<{ synchronous: number }>;

  async write(rows: unknown[][]): Promise<void> {
    await this.send({ rows });
  }

  /** Runs one other write statement on the thread's connection (after the batches sent before it); resolves to its change count. */
  run(sql: string, params: unknown[]): Promise<number> {
    return this.send({ sql, params });
  }

  private send(work: { rows: unknown[][] } | { sql: string; params: unknown[] }): Promise<number> {
    // A message to a thread that is gone would never be answered: the write fails now, and is kept to retry.
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Idle, the thread must not keep the process alive; it does while it opens its connection (someone awaits
      // `opened`) and while a batch is being written, so a shutdown never exits before the batch is committed.
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...work });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}

import { Worker } from 'node:worker_threads';

/**
 * Inserts batches of rows into the SQLite file from a worker thread (batch-writer.mjs) with its own
 * connection: the message-log hot path then costs the main thread a postMessage, not the inserts.
 */
export class SqliteBatchWriter {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private nextId = 1;

  /**
   * Rows are upserted (INSERT OR REPLACE) into `table`, each row an array of SQL values in `columns`
   * order, bound by position (named parameters looked each up on a row object, which doubled an
   * insert's cost). Arrays of plain values also cost a fraction of objects to pass to the thread.
   */
  constructor(file: string, layout: { table: string; columns: readonly string[] }) {
    const { table, columns } = layout;
    const sql = `INSERT OR REPLACE INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
    this.worker = new Worker(new URL('./batch-writer.mjs', import.meta.url), { workerData: { file, sql } });
    this.worker.on('message', ({ id, error }: { id: number; error?: string }) => {
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      if (this.waiting.size === 0) this.worker.unref();
      if (error) waiter?.reject(new Error(error));
      else waiter?.resolve();
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new Error(`the SQLite writer thread stopped (exit code ${code})`)));
    // Idle, the thread must not keep the process alive (after the listeners: adding one refs it again);
    // while a batch is being written it must, so a shutdown never exits before the batch is committed.
    this.worker.unref();
  }

  write(rows: unknown[][]): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, rows });
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

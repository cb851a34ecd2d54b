import type { MessageLogRepository } from '../store/types.ts';
import type { WriterLogger } from './writer.ts';

const HOUR_MS = 3_600_000;
/** Rows per delete: each delete is one short transaction, so message-log inserts interleave with a long purge. */
const DELETE_BATCH = 1000;

export interface MessageLogRetentionOptions {
  /** Records whose LogStart is older than this (ms) are deleted; config.messageLogRetentionMs. 0 keeps them all. */
  retentionMs: number;
  /** Rows per delete statement. Default 1000. */
  batchSize?: number;
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
  log: WriterLogger & { info(obj: object, msg: string): void };
}

/** How often the purge runs: hourly, or more often for a retention shorter than a day (24 runs per period, at least 1 s apart). */
export function purgeIntervalMs(retentionMs: number): number {
  return Math.min(HOUR_MS, Math.max(1000, Math.round(retentionMs / 24)));
}

/**
 * Deletes message processing logs once they are older than the retention (CPI keeps them 30 days), so the
 * table stops growing: at start and then every `purgeIntervalMs`, oldest first, in batches of `batchSize`.
 * A failed purge is logged (a warning) and tried again at the next run; `close()` stops the timer and waits
 * for a purge in progress to reach the end of its current batch, before the store closes.
 */
export class MessageLogRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private closed = false;
  private readonly batchSize: number;
  private readonly now: () => number;

  constructor(
    private readonly repository: Pick<MessageLogRepository, 'deleteOlderThan'>,
    private readonly options: MessageLogRetentionOptions,
  ) {
    this.batchSize = options.batchSize ?? DELETE_BATCH;
    this.now = options.now ?? Date.now;
  }

  /** Starts the first purge now and schedules the rest (an unref'd timer: it never keeps the process alive). No-op without a retention. */
  start(): void {
    if (this.options.retentionMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.purge(), purgeIntervalMs(this.options.retentionMs));
    this.timer.unref();
    void this.purge();
  }

  /**
   * Deletes every record older than the retention; resolves to how many. A purge asked for while one runs joins it.
   * Never rejects: a failure is logged and the next run tries again.
   */
  purge(): Promise<number> {
    if (this.running) return this.running;
    const run = this.deleteAll().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }

  private async deleteAll(): Promise<number> {
    let before = '';
    let deleted = 0;
    try {
      before = new Date(this.now() - this.options.retentionMs).toISOString();
      for (;;) {
        if (this.closed) break;
        const count = await this.repository.deleteOlderThan(before, this.batchSize);
        deleted += count;
        if (count < this.batchSize) break;
      }
    } catch (err) {
      this.options.log.warn({ deleted, before, reason: (err as Error).message }, 'deleting message processing logs past their retention failed: tried again at the next run');
      return deleted;
    }
    if (deleted > 0) this.options.log.info({ deleted, before }, 'message processing logs past their retention deleted');
    return deleted;
  }
}

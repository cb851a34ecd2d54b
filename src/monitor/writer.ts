import type { MessageLogRecord, MessageLogRepository } from '../store/types.ts';
import { within } from '../deadline.ts';

/** The slice of a pino logger the writer uses. */
export interface WriterLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MessageLogWriterOptions {
  /** Interval of the background flush (ms); config.messageLogFlushMs. Default 200. */
  flushMs?: number;
  /** A flush is scheduled (setImmediate) as soon as this many records are pending; also the size of one insertMany. Default 500. */
  batchSize?: number;
  /** At most this many records wait in memory (while the store fails); beyond it the oldest are dropped. Default 100 000. */
  maxPending?: number;
  /** How often close() tries to write what is left before giving up (a pause of `flushMs` between tries). Default 3. */
  closeAttempts?: number;
  /**
   * How long close() may take in all (ms): a write that hangs (a table lock, a network that stopped answering) must
   * not hold the shutdown past the orchestrator's grace period (Docker's is 10 s), after which the records are lost
   * to SIGKILL without a word. At the deadline, what is not confirmed written goes to `keep`. Default 5000.
   */
  closeTimeoutMs?: number;
  /**
   * Where close() keeps the records it could not write (the store down at shutdown), for the next start to write;
   * resolves to where they went. Without it, or when it fails too, they are lost.
   */
  keep?: (records: MessageLogRecord[]) => Promise<string>;
  log: WriterLogger;
}

/** What close() could not write: kept for the next start (in `keptIn`), or lost. */
export interface UnwrittenAtClose {
  kept: number;
  keptIn?: string;
  lost: number;
}

/** While the store keeps failing, one line about it per this long. */
const FAILURE_LOG_MS = 10_000;
/** At most this many MessageGuids appear in a log line about a batch. */
const LOGGED_IDS = 5;

/**
 * Buffers message processing log records and writes them to the store in batches, off the hot path.
 *
 * - `add()` only pushes to an array; writing happens every `flushMs` (an unref'd interval, so it never keeps the
 *   process alive) or, once `batchSize` records are pending, on the next turn of the event loop (setImmediate).
 * - One flush at a time: a flush that is asked for while one runs waits for it, then writes what is left.
 * - A failed write is logged (ids and counts only, never record content); its records go back to the front of the
 *   queue and are retried on the next interval tick (not immediately: a failing store is not hammered).
 *   While the store keeps failing, at most `maxPending` records are kept; the oldest are dropped with a warning.
 * - `close()` stops the timer and writes everything left, so nothing is lost at an orderly shutdown.
 */
export class MessageLogWriter {
  private pending: MessageLogRecord[] = [];
  /** The batch an insertMany is writing right now (still readable through find()). */
  private inFlight: MessageLogRecord[] = [];
  private running: Promise<boolean> | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** close(), once called: a second call waits for the same. */
  private closing: Promise<void> | undefined;
  /** What could not be written has been kept (or lost) already: nothing more to do at close. */
  private settled = false;
  /** The keeping of what could not be written, once started: keepNow() waits for it rather than keep twice. */
  private keeping: Promise<void> | undefined;
  private dropped = 0;
  private droppedAfterClose = 0;
  private readonly flushMs: number;
  private readonly batchSize: number;
  private readonly maxPending: number;
  private readonly closeAttempts: number;
  private readonly closeTimeoutMs: number;
  private readonly keep: MessageLogWriterOptions['keep'];
  private readonly log: WriterLogger;
  /** Failed writes since the last one that went through (the store is failing while > 0), and when the last was logged. */
  private failedTries = 0;
  private failureLoggedAt = 0;
  /** What the last close() could not write. */
  unwrittenAtClose: UnwrittenAtClose = { kept: 0, lost: 0 };

  constructor(
    private readonly repository: Pick<MessageLogRepository, 'insertMany'>,
    options: MessageLogWriterOptions,
  ) {
    this.flushMs = options.flushMs ?? 200;
    this.batchSize = options.batchSize ?? 500;
    this.maxPending = options.maxPending ?? 100_000;
    this.closeAttempts = options.closeAttempts ?? 3;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.keep = options.keep;
    this.log = options.log;
    this.timer = setInterval(() => this.tick(), this.flushMs);
    this.timer.unref();
  }

  /** Records not yet in the store (queued or being written). */
  get pendingCount(): number {
    return this.pending.length + this.inFlight.length;
  }

  /** Queues a record for the store. Synchronous and cheap: the message's hot path calls it. */
  add(record: MessageLogRecord): void {
    if (this.closed) {
      // The store closes right after the writer: a record this late cannot be written any more.
      if (this.droppedAfterClose++ === 0) this.log.warn({ messageGuid: record.MessageGuid }, 'message processing log added after the writer closed: dropped');
      return;
    }
    this.pending.push(record);
    if (this.pending.length > this.maxPending) {
      this.pending.shift();
      this.dropped += 1;
    }
    if (this.pending.length >= this.batchSize && this.failedTries === 0 && this.immediate === null && this.running === null) {
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.flush();
      });
    }
  }

  /** The newest record for `guid` that is not in the store yet, if any. */
  find(guid: string): MessageLogRecord | undefined {
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i].MessageGuid === guid) return this.pending[i];
    for (let i = this.inFlight.length - 1; i >= 0; i--) if (this.inFlight[i].MessageGuid === guid) return this.inFlight[i];
    return undefined;
  }

  /**
   * Writes every record pending when called (after waiting for a flush that is running already).
   * Resolves true when they all reached the store, false when a write failed (the failure is logged and the records
   * stay queued). Never rejects.
   */
  async flush(): Promise<boolean> {
    while (this.running) await this.running;
    if (this.pending.length === 0) return true;
    const run = this.drain(this.pending.length).finally(() => {
      // Cleared before `run` settles, so whoever awaited it sees the writer idle (or the next flush).
      this.running = null;
    });
    this.running = run;
    return run;
  }

  /** Stops the timer and writes everything left; idempotent. Resolves when done (logs what could not be written). */
  close(): Promise<void> {
    return (this.closing ??= this.closeOnce());
  }

  /**
   * Shutdown's last resort, when stopping takes too long (something waits for a database that stopped answering):
   * every record not known to be written is kept now (one being written may be written twice: it replaces itself),
   * and close(), running or to come, does nothing more.
   */
  async keepNow(): Promise<void> {
    this.stopTimers();
    if (this.settled) return this.keeping;
    await this.keepUnwritten();
    this.reportDropped();
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.closed = true;
  }

  private async closeOnce(): Promise<void> {
    this.stopTimers();
    // keepNow() came first: done once what it keeps is kept.
    if (this.settled) return this.keeping;
    const deadline = Date.now() + this.closeTimeoutMs;
    for (let attempt = 1; !this.settled; attempt++) {
      const written = await within(this.flush(), deadline - Date.now(), undefined);
      if (this.settled) return;
      if (written === true && this.pending.length === 0) break;
      // A write still running at the deadline (undefined) may never end: what is left is kept, that batch with it.
      if (written === undefined || attempt >= this.closeAttempts || Date.now() >= deadline) {
        await this.keepUnwritten();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(this.flushMs, 1000, deadline - Date.now()))));
    }
    this.settled = true;
    this.reportDropped();
  }

  /** At close, after the last try failed: the records left go to `keep` for the next start, or are lost (and said so). */
  private keepUnwritten(): Promise<void> {
    this.settled = true;
    // A batch still in flight (a write that hangs) is kept too: written twice at worst, it replaces itself.
    const left = [...this.inFlight, ...this.pending];
    this.pending = [];
    return (this.keeping = left.length === 0 ? Promise.resolve() : this.keepRecords(left));
  }

  private async keepRecords(left: MessageLogRecord[]): Promise<void> {
    if (this.keep) {
      try {
        const keptIn = await this.keep(left);
        this.unwrittenAtClose = { kept: left.length, keptIn, lost: 0 };
        this.log.warn({ kept: left.length, file: keptIn }, 'message processing logs could not be written before shutdown: kept for the next start');
        return;
      } catch (err) {
        this.log.error({ err: { message: (err as Error)?.message ?? String(err) } }, 'message processing logs could not be kept for the next start either');
      }
    }
    this.unwrittenAtClose = { kept: 0, lost: left.length };
    this.log.error({ lost: left.length }, 'message processing logs could not be written before shutdown: lost');
  }

  private tick(): void {
    this.reportDropped();
    if (this.pending.length > 0 && this.running === null) void this.flush();
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    this.log.warn({ dropped: this.dropped, maxPending: this.maxPending }, 'message processing log buffer full: oldest records dropped');
    this.dropped = 0;
  }

  /** Writes up to `count` records from the front of the queue, in batches; false on the first failure. */
  private async drain(count: number): Promise<boolean> {
    let left = count;
    while (left > 0 && this.pending.length > 0) {
      const batch = this.pending.splice(0, Math.min(this.batchSize, left));
      this.inFlight = batch;
      try {
        await this.repository.insertMany(batch);
      } catch (err) {
        this.inFlight = [];
        // Kept already (the stop's last resort came while this write hung): nothing retries it any more.
        if (this.settled) return false;
        this.pending.unshift(...batch);
        const overflow = this.pending.length - this.maxPending;
        if (overflow > 0) {
          this.pending.splice(0, overflow);
          this.dropped += overflow;
        }
        this.failedTries++;
        // The first failure at once; while the store stays down, one line per FAILURE_LOG_MS (not one per tick).
        const now = Date.now();
        if (this.failedTries === 1 || now - this.failureLoggedAt >= FAILURE_LOG_MS) {
          this.failureLoggedAt = now;
          this.log.error(
            {
              err: { message: (err as Error)?.message ?? String(err), code: (err as { code?: unknown })?.code },
              batchSize: batch.length,
              pending: this.pending.length,
              failedTries: this.failedTries,
              messageGuids: batch.slice(0, LOGGED_IDS).map((record) => record.MessageGuid),
            },
            'writing message processing logs failed; retrying on the next tick',
          );
        }
        return false;
      }
      this.inFlight = [];
      left -= batch.length;
    }
    if (this.failedTries > 0) {
      this.log.warn({ failedTries: this.failedTries }, 'message processing logs are written again');
      this.failedTries = 0;
    }
    // Records that arrived while this flush ran: if a whole batch is waiting, write it now rather than at the tick.
    if (!this.closed && this.pending.length >= this.batchSize && this.immediate === null) {
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.flush();
      });
    }
    return true;
  }
}

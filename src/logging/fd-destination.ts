import { write, writeSync } from 'node:fs';

export interface FdDestinationOptions {
  /** A write is started once this many bytes wait (and no write is running). Default 4096. */
  minLength?: number;
  /** Bytes waiting are written at the latest this often (ms), however few. Default 100. */
  flushMs?: number;
  /** At most this many bytes wait while the fd is slower than the logging; lines beyond it are dropped and counted. Default 16 MiB. */
  maxPending?: number;
  /** How long a write that keeps failing with EAGAIN is retried at exit before the rest is given up (ms). Default 2000. */
  exitRetryMs?: number;
}

const CHUNK_BYTES = 64 * 1024;
/** A pipe that is full answers EAGAIN: the write is tried again after this pause. */
const BUSY_RETRY_MS = 10;

/**
 * A pino destination writing lines to a file descriptor in chunks, off the event loop (fs.write on the
 * thread pool), in order. Each line is encoded once, straight into a Buffer: sonic-boom (pino's own
 * destination) keeps its pending chunk as a string and measures it (`Buffer.byteLength`) again on every
 * line, which under load cost more than formatting the line. Whatever waits is written synchronously
 * when the process exits.
 */
export class FdDestination {
  private readonly minLength: number;
  private readonly maxPending: number;
  private readonly exitRetryMs: number;
  /** Filled chunks waiting for their write, oldest first; the last one is being filled. */
  private readonly chunks: { buffer: Buffer; length: number }[] = [];
  private pendingBytes = 0;
  /** The chunk being written and how much of it is written already. */
  private writing: { buffer: Buffer; offset: number; length: number } | undefined;
  /** Set while the fd was full (EAGAIN) and the rest of `writing` waits to be tried again. */
  private retry: NodeJS.Timeout | undefined;
  private spare: Buffer | undefined;
  /** Lines dropped (more than `maxPending` bytes waited) and not yet reported in the output. */
  private droppedUnreported = 0;
  /** The fd refused a write for good (EPIPE, EBADF…): lines are dropped from then on. */
  private broken = false;
  private readonly timer: NodeJS.Timeout;
  private readonly flushWaiters: (() => void)[] = [];
  private readonly onWritten = (err: NodeJS.ErrnoException | null, written: number) => this.written(err, written);
  private readonly onExit = () => this.flushSync();

  constructor(
    private readonly fd: number,
    options: FdDestinationOptions = {},
  ) {
    this.minLength = options.minLength ?? 4096;
    this.maxPending = options.maxPending ?? 16 * 1024 * 1024;
    this.exitRetryMs = options.exitRetryMs ?? 2000;
    this.timer = setInterval(() => this.startWrite(), options.flushMs ?? 100);
    this.timer.unref();
    process.on('exit', this.onExit);
  }

  write(line: string): boolean {
    if (this.broken) return false;
    // A UTF-8 line takes at most three bytes per UTF-16 unit: an upper bound, known without encoding.
    if (this.pendingBytes + line.length * 3 > this.maxPending && this.pendingBytes + Buffer.byteLength(line) > this.maxPending) {
      this.droppedUnreported++;
      return false;
    }
    this.append(line);
    if (this.writing === undefined && this.pendingBytes >= this.minLength) this.startWrite();
    return true;
  }

  /** pino's `logger.flush(cb)`: everything waiting is written (after a write that is running), then `callback`. */
  flush(callback: () => void = () => {}): void {
    if (this.writing !== undefined && this.retry === undefined) {
      this.flushWaiters.push(callback);
      return;
    }
    this.flushSync();
    callback();
  }

  /** Writes everything waiting, synchronously (also run at process exit). */
  flushSync(): void {
    if (this.broken) return;
    if (this.droppedUnreported > 0) this.reportDropped();
    const deadline = Date.now() + this.exitRetryMs;
    const waiting = this.chunks.splice(0).map((chunk) => ({ buffer: chunk.buffer, offset: 0, length: chunk.length }));
    if (this.retry !== undefined) {
      // The chunk that met a full fd is not being written: it goes first.
      clearTimeout(this.retry);
      this.retry = undefined;
      waiting.unshift(this.writing!);
      this.writing = undefined;
    }
    // A chunk whose asynchronous write is running is left to it (the thread pool may finish it before
    // the process is gone), as sonic-boom does; everything after it is written here, in order.
    for (const chunk of waiting) {
      while (chunk.offset < chunk.length) {
        try {
          const written = writeSync(this.fd, chunk.buffer, chunk.offset, chunk.length - chunk.offset);
          chunk.offset += written;
          this.pendingBytes -= written;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > deadline) {
            // Given up (the fd stays full, or failed): what is left is lost, and no longer waits.
            for (const lost of waiting) this.pendingBytes -= lost.length - lost.offset;
            return;
          }
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, BUSY_RETRY_MS);
        }
      }
    }
  }

  /** Writes what waits, then stops the timer and the exit hook: for a destination that is done with. */
  end(callback: () => void = () => {}): void {
    this.flush(() => {
      clearInterval(this.timer);
      process.off('exit', this.onExit);
      callback();
    });
  }

  /** Says in the log itself, once the backlog has eased, how many lines were lost to it. */
  private reportDropped(): void {
    const count = this.droppedUnreported;
    this.droppedUnreported = 0;
    this.append(`{"level":40,"time":${Date.now()},"droppedLines":${count},"msg":"log lines dropped: the log output was slower than the logging"}\n`);
  }

  /** Encodes `line` onto the chunk being filled (a new one when it does not fit). */
  private append(line: string): void {
    const bound = line.length * 3;
    let chunk = this.chunks[this.chunks.length - 1];
    if (chunk === undefined || chunk.buffer.length - chunk.length < bound) {
      chunk = { buffer: this.newBuffer(bound), length: 0 };
      this.chunks.push(chunk);
    }
    const bytes = chunk.buffer.write(line, chunk.length);
    chunk.length += bytes;
    this.pendingBytes += bytes;
  }

  private newBuffer(atLeast: number): Buffer {
    const spare = this.spare;
    this.spare = undefined;
    if (spare && spare.length >= atLeast) return spare;
    return Buffer.allocUnsafe(Math.max(CHUNK_BYTES, atLeast));
  }

  private startWrite(): void {
    if (this.writing !== undefined || this.chunks.length === 0) return;
    const chunk = this.chunks.shift()!;
    if (chunk.length === 0) {
      this.spare = chunk.buffer;
      return;
    }
    this.writing = { buffer: chunk.buffer, offset: 0, length: chunk.length };
    this.writeRest();
  }

  /** Starts writing what is left of the chunk being written. */
  private writeRest(): void {
    const current = this.writing!;
    write(this.fd, current.buffer, current.offset, current.length - current.offset, null, this.onWritten);
  }

  private written(err: NodeJS.ErrnoException | null, written: number): void {
    const current = this.writing!;
    if (err) {
      if (err.code === 'EAGAIN') {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.writeRest();
        }, BUSY_RETRY_MS);
        return;
      }
      // The fd is gone (EPIPE, EBADF…): nothing more can be written; logging must not take the process down.
      this.broken = true;
      this.chunks.length = 0;
      this.pendingBytes = 0;
      this.writing = undefined;
      for (const waiter of this.flushWaiters.splice(0)) waiter();
      return;
    }
    current.offset += written;
    this.pendingBytes -= written;
    if (current.offset < current.length) {
      this.writeRest();
      return;
    }
    this.writing = undefined;
    this.spare ??= current.buffer;
    if (this.flushWaiters.length > 0) {
      const waiters = this.flushWaiters.splice(0);
      this.flushSync();
      for (const waiter of waiters) waiter();
    }
    if (this.droppedUnreported > 0 && this.pendingBytes < this.maxPending / 2) this.reportDropped();
    if (this.pendingBytes >= this.minLength) this.startWrite();
  }
}

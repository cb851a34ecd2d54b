import { setTimeout as sleep } from 'node:timers/promises';
import { SQLITE_BUSY_CODES } from '../unavailable.ts';

/**
 * The main connection's busy timeout (ms): how long one statement may wait, synchronously, for a lock another
 * connection holds. better-sqlite3 is synchronous, so that wait stalls the event loop (every request, every
 * message): it is kept short, enough for the writer thread's commits, and a longer lock is waited for by
 * `whenUnlocked` between tries, with the event loop free.
 */
export const MAIN_BUSY_TIMEOUT_MS = 20;

/** How long a call waits in all for a lock (tries and pauses) before it fails with SQLITE_BUSY: 503 STORE_UNAVAILABLE. */
export const BUSY_BUDGET_MS = 5000;

/** Pauses between tries: doubling from the first to the longest, so a lock held long costs the event loop ~10 % of its time. */
const FIRST_PAUSE_MS = 20;
const LONGEST_PAUSE_MS = 200;

const isBusy = (err: unknown) => SQLITE_BUSY_CODES.has((err as { code?: unknown } | null)?.code as string);

/**
 * Runs `run` (synchronous calls on the main connection) and, while it fails because another connection holds a
 * lock (SQLITE_BUSY), runs it again after a pause, up to `budgetMs` in all; then its last error is thrown. Every
 * statement on the main connection goes through here, a transaction as one `run`: retried whole, since a
 * transaction that failed was rolled back (better-sqlite3's `transaction()` does).
 */
export async function whenUnlocked<T>(run: () => T, budgetMs = BUSY_BUDGET_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
    try {
      return run();
    } catch (err) {
      // Bounded: each turn either returns, throws, or moves towards the deadline by at least `pause`.
      if (!isBusy(err) || Date.now() + pause > deadline) throw err;
    }
    await sleep(pause);
  }
}

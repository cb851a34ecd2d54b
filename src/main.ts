import { loadConfig } from './config/index.ts';
import { buildApp } from './app.ts';
import { within } from './deadline.ts';

/** How long the last log lines may take to be written at exit. */
const EXIT_FLUSH_LIMIT_MS = 1000;
/**
 * How long stopping may take before the message logs not yet written are kept at once and the process goes:
 * with the exit's flush, inside Docker's 10 s between SIGTERM and SIGKILL (which would lose them without a word).
 * Each part of the stop is bounded on its own; this is for what still waits on a database that stopped answering.
 */
const STOP_LIMIT_MS = 8000;

/** Starts the server and stops it cleanly on SIGINT / SIGTERM (message logs flushed, store closed). */
export async function start(): Promise<void> {
  const config = loadConfig();
  const app = await buildApp({ config });
  let closing = false;
  const stop = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const startedAt = performance.now();
    let code = 0;
    try {
      const finished = await within(app.close().then(() => true), STOP_LIMIT_MS, false);
      if (!finished) await app.messageLogs.keepNow();
      // The last line an operator waits for: nothing was left running or unwritten, or what was not.
      const durationMs = Math.round(performance.now() - startedAt);
      const { kept, keptIn, lost } = app.messageLogs.unwrittenAtClose;
      const done = finished ? 'messages in flight finished' : `stopping did not finish within ${STOP_LIMIT_MS} ms (work waiting on the store or a token endpoint), left behind`;
      const store = app.storeClosed ? 'store closed' : finished ? 'store left open (it did not close in time)' : 'store left open';
      if (!finished) code = 1;
      if (lost > 0) {
        code = 1;
        app.log.error({ durationMs, lost }, `stopped: ${done}, message logs LOST (the store could not take them), ${store}`);
      } else if (kept > 0) {
        app.log.warn({ durationMs, kept, file: keptIn }, `stopped: ${done}, message logs kept for the next start (the store could not take them), ${store}`);
      } else {
        app.log[finished ? 'info' : 'warn']({ durationMs }, `stopped: ${done}, message logs written, ${store}`);
      }
    } catch (err) {
      code = 1;
      app.log.error({ err }, 'stopping failed');
    } finally {
      // Exit once the log has written its last lines, after any write still running, so none is lost or
      // reordered (at exit, a chunk still being written on the thread pool would land after these). Bounded:
      // a stdout that takes no more must not keep the process.
      const exit = () => process.exit(code);
      setTimeout(exit, EXIT_FLUSH_LIMIT_MS).unref();
      (app.log as unknown as { flush(done: () => void): void }).flush(exit);
    }
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    // Not serving (the port is taken, say): close what was opened, or the store's connections and the
    // PostgreSQL listener would keep a process alive that said it cannot start.
    await app.close().catch(() => undefined);
    throw err;
  }
}

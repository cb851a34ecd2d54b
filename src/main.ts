import { loadConfig } from './config/index.ts';
import { buildApp } from './app.ts';

/** How long the last log lines may take to be written at exit. */
const EXIT_FLUSH_LIMIT_MS = 2000;

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
      await app.close();
      // The last line an operator waits for: nothing was left running or unwritten, or what was not.
      const durationMs = Math.round(performance.now() - startedAt);
      const { kept, keptIn, lost } = app.messageLogs.unwrittenAtClose;
      if (lost > 0) {
        code = 1;
        app.log.error({ durationMs, lost }, 'stopped: messages in flight finished, message logs LOST (the store could not take them), store closed');
      } else if (kept > 0) {
        app.log.warn({ durationMs, kept, file: keptIn }, 'stopped: messages in flight finished, message logs kept for the next start (the store could not take them), store closed');
      } else {
        app.log.info({ durationMs }, 'stopped: messages in flight finished, message logs written, store closed');
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

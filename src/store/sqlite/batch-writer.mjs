// Runs in a worker thread: writes batches of rows (and deletes old ones) with a SQLite connection of its
// own, so the synchronous writes (and their index updates) never stall the event loop that serves messages.
// Plain JavaScript, so it loads in a worker whether or not the main thread runs through tsx.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

function open() {
  const db = new Database(workerData.file);
  db.pragma('journal_mode = WAL');
  // The durability batch-writer.ts chooses for message logs (BATCH_WRITER_SYNCHRONOUS).
  db.pragma(`synchronous = ${workerData.synchronous}`);
  db.pragma('busy_timeout = 5000');
  const insert = db.prepare(workerData.sql);
  // Each row is an array of its values, in the statement's column order.
  const insertAll = db.transaction((rows) => {
    for (const row of rows) insert.run(row);
  });
  return { db, insertAll };
}

/** SQLite's error code (SQLITE_BUSY, …), which the message does not hold: it tells an outage from a bad write. */
function codeOf(err) {
  const code = err?.code;
  return typeof code === 'string' ? code : undefined;
}

let db;
let insertAll;
try {
  ({ db, insertAll } = open());
} catch (err) {
  // Said in words: an error thrown out of the thread reaches the main thread without its message (SqliteError).
  parentPort.postMessage({ openFailed: err instanceof Error ? err.message : String(err), code: codeOf(err) });
  process.exit(1);
}
// Ready: what the connection really does (read back, not what was asked), for the start-up log line.
parentPort.postMessage({ opened: { synchronous: db.pragma('synchronous', { simple: true }) } });

const statements = new Map();

// { id, rows }: insert the rows. { id, sql, params }: run one other write (prepared once) and answer its change count.
parentPort.on('message', ({ id, rows, sql, params }) => {
  try {
    if (sql === undefined) {
      insertAll(rows);
      parentPort.postMessage({ id });
      return;
    }
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = db.prepare(sql)));
    parentPort.postMessage({ id, changes: statement.run(...params).changes });
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err), code: codeOf(err) });
  }
});

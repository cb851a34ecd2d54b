/**
 * Whether a store call failed because the database cannot be reached right now (PostgreSQL down, restarting or
 * its connection cut, or not answering within iflow's timeouts; SQLite locked by another process past the busy timeout), as opposed to a failure of the
 * request itself. Such failures are worth answering with 503 and "send it again", not 500.
 */

/** Node's errors for a connection that could not be made or was lost. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/**
 * PostgreSQL's SQLSTATEs for a connection that failed or was lost (class 08), and for the server shutting down,
 * starting up or out of connections. 08P01 (protocol violation) is also what PgBouncer answers for its own
 * troubles (it cannot reach the server, no connection free in time, too many clients): in front of a shared
 * database that is an outage far more often than a driver bug.
 */
const SERVER_UNAVAILABLE_STATES = new Set(['08000', '08001', '08003', '08004', '08006', '08007', '08P01', '57P01', '57P02', '57P03', '53300']);
/**
 * PostgreSQL's SQLSTATEs for a statement the server gave up on: 57014 (query_canceled: iflow's statement_timeout,
 * or cancelled by an administrator) and 55P03 (lock_not_available: iflow's lock_timeout ran out while a table or
 * row stayed locked, by a migration or by hand). The database is busy, not the request wrong: send it again.
 */
const SERVER_BUSY_STATES = new Set(['57014', '55P03']);
/**
 * node-postgres's own words for a lost or never made connection (these errors carry no code). "timeout exceeded when
 * trying to connect" is also what a pool with every connection busy says: either way none can be had now. "Query
 * read timeout" is its query_timeout: no answer at all in time (a network that drops packets, a server that froze).
 */
const PG_CONNECTION_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout)/;
/** SQLite's: the database stayed locked by another connection for longer than the busy timeout. */
export const SQLITE_BUSY_CODES: ReadonlySet<string> = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_BUSY_TIMEOUT']);

/**
 * The reason, short and without secrets (an error code, or node-postgres's fixed wording), when `err` says the
 * store is unreachable; undefined for any other error. Meant for errors that reach the error handler as thrown:
 * calls to other servers (token endpoints, receivers) fail with iflow's own errors, so a bare connection error
 * there is the store's. A `cause` is not followed, since a wrapped connection error may be another server's.
 */
export function storeUnavailableReason(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  // An error with a status of its own is the request's: a caller that went away mid-body is ECONNRESET with 400.
  if (typeof (err as { statusCode?: unknown }).statusCode === 'number') return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || SQLITE_BUSY_CODES.has(code) || SERVER_UNAVAILABLE_STATES.has(code) || SERVER_BUSY_STATES.has(code)) return code;
  } else if (PG_CONNECTION_MESSAGE.test(err.message)) {
    return err.message.slice(0, 100);
  }
  // A connection to localhost tries each of its addresses: it failed when every try did.
  if (err instanceof AggregateError && err.errors.length > 0) {
    const reasons = err.errors.map((inner: unknown) => storeUnavailableReason(inner));
    if (reasons.every((reason) => reason !== undefined)) return [...new Set(reasons)].join(', ');
  }
  return undefined;
}

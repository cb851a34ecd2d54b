import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { checkMasterKeyText, MasterKeyError } from '../security/crypto.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, PASSWORD_PATTERN, PASSWORD_RULE, USER_NAME_PATTERN, USER_NAME_RULE } from '../security/passwords.ts';
import { parseDuration } from './duration.ts';

/** Everything iflow reads from the environment, resolved once at start. */
export interface Config {
  port: number;
  host: string;
  /** External base URL; the OAuth redirect URI is built from it. No trailing slash. */
  publicUrl: string;
  flowsDir: string;
  dataDir: string;
  databaseUrl?: string;
  /** PostgreSQL: longest a statement may run before the server cancels it (ms); lock waits and the client's own bound follow from it. */
  databaseStatementTimeoutMs: number;
  /** base64 32-byte key; when unset a key file in the data dir is used (generated on first start). */
  masterKey?: string;
  adminUser: string;
  adminPassword?: string;
  /** IFLOW_PARAM_<NAME> overrides of flows' externalized parameters, by NAME. */
  parameterOverrides: Record<string, string>;
  logLevel: string;
  /** How often every authorized credential's refresh token is exercised (ms). */
  tokenKeepAliveMs: number;
  /** How often buffered message processing logs are written (ms). */
  messageLogFlushMs: number;
  /** Message processing logs older than this (ms, by LogStart) are deleted; 0 keeps them forever. */
  messageLogRetentionMs: number;
  /**
   * Which proxies' X-Forwarded-For/-Host/-Proto are believed (Fastify's trustProxy): false (the default: the log
   * shows the peer that connected), true (any), or addresses and CIDR ranges. No hop count: Fastify 5 ignores
   * one, as it cannot tell whether the peer that connected is a proxy at all.
   */
  trustProxy: boolean | string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function port(value: string | undefined): number {
  if (value === undefined || value === '') return 8080;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`PORT must be a port number, got "${value}"`);
  return n;
}

function duration(name: string, value: string | undefined, fallback: string): number {
  try {
    return parseDuration(value === undefined || value === '' ? fallback : value);
  } catch (err) {
    throw new ConfigError(`${name}: ${(err as Error).message}`);
  }
}

/** IFLOW_MPL_FLUSH: a wait between writes; 0 would be a timer firing all the time, not "off". */
function messageLogFlush(value: string | undefined): number {
  const ms = duration('IFLOW_MPL_FLUSH', value, '200ms');
  // Above ~24.8 days setInterval fires every millisecond instead; nobody wants a record to wait a day.
  if (ms > 86_400_000) throw new ConfigError(`IFLOW_MPL_FLUSH: at most 1d, got "${value}"`);
  if (ms < 1) throw new ConfigError(`IFLOW_MPL_FLUSH: at least 1ms (message logs are always written; this is how long a batch may wait), got "${value}"`);
  return ms;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function logLevel(value: string | undefined): string {
  if (value === undefined || value === '') return 'info';
  if (!LOG_LEVELS.includes(value)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value;
}

/**
 * IFLOW_PUBLIC_URL: where browsers reach iflow, the base of the OAuth redirect URI. An http(s) URL with a host and
 * nothing after its path: `new URL('localhost:8080')` parses too (as scheme "localhost:"), and would have made
 * every redirect URI wrong without a word.
 */
function publicUrlSetting(value: string | undefined, listenPort: number): string {
  const text = (value || `http://localhost:${listenPort}`).replace(/\/+$/, '');
  const problem = (() => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return 'is not an absolute URL';
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must start with http:// or https://';
    if (!url.hostname) return 'has no host';
    if (url.username || url.password) return 'must not hold a user name or password';
    if (url.search || url.hash) return 'must not have a query or fragment';
    return undefined;
  })();
  if (problem) throw new ConfigError(`IFLOW_PUBLIC_URL ${problem} (such as https://iflow.example.com), got "${text}"`);
  // As the URL parser read it (http:/host, a stray "?" or "#", a backslash all read as something else than written).
  const url = new URL(text);
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/** Longest message log retention: beyond it a cut-off date is out of JavaScript's range; keeping all is `0`. */
const MAX_RETENTION_DAYS = 36_500;

function retention(value: string | undefined): number {
  const ms = duration('IFLOW_MPL_RETENTION', value, '30d');
  if (ms > MAX_RETENTION_DAYS * 86_400_000) throw new ConfigError(`IFLOW_MPL_RETENTION: at most ${MAX_RETENTION_DAYS}d (use 0 to keep message logs forever)`);
  return ms;
}

/** The parts of a database URL that are percent-decoded (by the pg driver too), by their names in an error. */
const DECODED_URL_PARTS = [
  ['username', 'user name'],
  ['password', 'password'],
  ['hostname', 'host'],
  ['pathname', 'database name'],
] as const;

/**
 * DATABASE_URL: a "%" that starts no percent-escape of UTF-8 (`s3%cret`) is read by the driver in its own way (and
 * failed later as a bare "URI malformed"): refused here, naming the part but never its text, the password's least.
 * Only URLs are checked: other forms (a socket path) are the driver's to read.
 */
function databaseUrlSetting(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  for (const [part, name] of DECODED_URL_PARTS) {
    try {
      decodeURIComponent(url[part]);
    } catch {
      throw new ConfigError(
        `DATABASE_URL: the ${name} holds a malformed percent-escape (a "%" must start one: two hex digits, of UTF-8, such as %40 for "@"): write a "%" of the ${name} itself as %25`,
      );
    }
  }
  return value;
}

/**
 * IFLOW_PG_STATEMENT_TIMEOUT: PostgreSQL's statement_timeout for iflow's queries. Not 0: without a bound, a locked
 * table or a stalled network holds the pool's connections, and every login and the admin API with them.
 */
function statementTimeout(value: string | undefined): number {
  const ms = duration('IFLOW_PG_STATEMENT_TIMEOUT', value, '10s');
  if (ms < 100 || ms > 3_600_000) throw new ConfigError(`IFLOW_PG_STATEMENT_TIMEOUT: from 100ms to 1h, got "${value}"`);
  return ms;
}

/** proxy-addr's (Fastify's) names for the loopback, link-local and private ranges of IPv4 and IPv6. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** A bare address, a CIDR range (10.0.0.0/8, fd00::/8) or a named range (loopback…). */
function isAddressOrRange(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true;
  const [address, bits, extra] = entry.split('/');
  if (extra !== undefined || !isIP(address)) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (isIP(address) === 4 ? 32 : 128);
}

/** IFLOW_TRUST_PROXY: unset or "false", "true", or a comma-separated list of addresses and (named) ranges. */
function trustProxy(value: string | undefined): Config['trustProxy'] {
  const text = (value ?? '').trim();
  if (text === '' || text === 'false') return false;
  if (text === 'true') return true;
  const entries = text.split(',').map((entry) => entry.trim());
  const wrong = entries.find((entry) => !isAddressOrRange(entry));
  if (wrong !== undefined) {
    throw new ConfigError(`IFLOW_TRUST_PROXY: "${wrong}" is not an IP address, CIDR range or one of loopback, linklocal, uniquelocal (use true, false, or addresses and ranges separated by commas)`);
  }
  return entries;
}

/** The bootstrap admin's name and password follow the users API's rules (the password is never echoed). */
function adminSettings(env: NodeJS.ProcessEnv): { adminUser: string; adminPassword?: string } {
  const adminUser = env.IFLOW_ADMIN_USER || 'admin';
  if (!new RegExp(USER_NAME_PATTERN).test(adminUser)) throw new ConfigError(`IFLOW_ADMIN_USER: a user name is ${USER_NAME_RULE}`);
  const adminPassword = env.IFLOW_ADMIN_PASSWORD || undefined;
  // Characters as the users API's schema counts them (code points, not UTF-16 units).
  const length = adminPassword === undefined ? 0 : [...adminPassword].length;
  if (adminPassword !== undefined && (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH)) {
    throw new ConfigError(`IFLOW_ADMIN_PASSWORD: a password is ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters (this one has ${length})`);
  }
  if (adminPassword !== undefined && !new RegExp(PASSWORD_PATTERN, 'u').test(adminPassword)) {
    const lineBreak = /[\r\n]$/.test(adminPassword) ? ': it ends in a line break, as read from a file whose last line was taken in whole' : '';
    throw new ConfigError(`IFLOW_ADMIN_PASSWORD: a password is ${PASSWORD_RULE}${lineBreak}`);
  }
  return { adminUser, adminPassword };
}

/** IFLOW_MASTER_KEY, checked before anything is written (a store, an admin, a generated password). */
function masterKeySetting(env: NodeJS.ProcessEnv): string | undefined {
  const masterKey = env.IFLOW_MASTER_KEY || undefined;
  if (masterKey === undefined) return undefined;
  try {
    checkMasterKeyText(masterKey);
  } catch (err) {
    if (err instanceof MasterKeyError) throw new ConfigError(err.message);
    throw err;
  }
  return masterKey;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const listenPort = port(env.PORT);
  const parameterOverrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith('IFLOW_PARAM_') && value !== undefined) parameterOverrides[key.slice('IFLOW_PARAM_'.length)] = value;
  }
  return {
    port: listenPort,
    host: env.HOST || '127.0.0.1',
    publicUrl: publicUrlSetting(env.IFLOW_PUBLIC_URL, listenPort),
    flowsDir: resolve(env.IFLOW_FLOWS_DIR || './flows'),
    dataDir: resolve(env.IFLOW_DATA_DIR || './data'),
    databaseUrl: databaseUrlSetting(env.DATABASE_URL),
    databaseStatementTimeoutMs: statementTimeout(env.IFLOW_PG_STATEMENT_TIMEOUT),
    masterKey: masterKeySetting(env),
    ...adminSettings(env),
    parameterOverrides,
    logLevel: logLevel(env.LOG_LEVEL),
    tokenKeepAliveMs: duration('IFLOW_TOKEN_KEEPALIVE', env.IFLOW_TOKEN_KEEPALIVE, '24h'),
    messageLogFlushMs: messageLogFlush(env.IFLOW_MPL_FLUSH),
    messageLogRetentionMs: retention(env.IFLOW_MPL_RETENTION),
    trustProxy: trustProxy(env.IFLOW_TRUST_PROXY),
  };
}

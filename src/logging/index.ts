import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import { FdDestination } from './fd-destination.ts';

/**
 * Exact paths pino censors in every log line. No wildcard paths: they make pino scan every key of
 * every line, several times the cost of the line itself; nested secrets are caught by
 * `redactSecrets`, the formatter below, instead.
 */
export const REDACT_PATHS = [
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.Authorization',
  'headers.cookie',
  'headers.Cookie',
  'password',
  'clientSecret',
  'client_secret',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'id_token',
  'code_verifier',
  'secret',
  'token',
];

const QUERY_PARAMETER = /([?&])([^=&#]*)=([^&#]*)/g;
/**
 * Query parameter names whose values are kept out of logs: OAuth's (code, state, tokens, client_secret,
 * client_assertion, code_verifier), passwords (pass, pw, pwd…), and anything named like a key, a signature (sig,
 * X-Amz-Signature, hmac), a session, a cookie or a credential (api_key, subscription-key, jwt, bearer…), as headers
 * of those names are (isSensitiveHeader) and more.
 */
const SECRET_QUERY_NAME = /^(?:code|state|sig|pw|jwt)$|signature|hmac|auth|key|token|secret|pass|pwd|assertion|credential|session|verifier|bearer|cookie/i;

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/**
 * Whether a parameter's value is kept out of logs, by its name as a server reads it: decoded, and each part of a
 * PHP-style bracketed name on its own (`code[]`, `user[password]`, `a[b][token]`).
 */
function isSecretQueryName(name: string): boolean {
  const decoded = decodedName(name);
  return SECRET_QUERY_NAME.test(decoded) || decoded.split(/[[\]]+/).some((part) => part !== '' && SECRET_QUERY_NAME.test(part));
}

/** A URL fit for a log line: values of query parameters that carry secrets are replaced. */
export function redactUrl(url: string): string {
  if (!url.includes('=')) return url;
  return url.replace(QUERY_PARAMETER, (parameter, separator: string, name: string) =>
    isSecretQueryName(name) ? `${separator}${name}=[Redacted]` : parameter,
  );
}

const SECRET_KEY = /authorization|cookie|password|secret|token|api[-_]?key|code_?verifier/i;
const CREDENTIAL_VALUE = /^(bearer|basic)\s+\S/i;
const MAX_DEPTH = 4;

/**
 * A second net under the redact paths, for shapes they cannot name: any key that names a secret (in
 * any case) and any string that looks like an Authorization value, a few levels deep. Copies only
 * what it changes, so ordinary log objects pass through as they are.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    if (CREDENTIAL_VALUE.test(value)) return '[Redacted]';
    return value.includes('=') ? redactUrl(value) : value;
  }
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, index) => {
      const redacted = redactSecrets(item, depth + 1);
      if (redacted !== item) (copy ??= [...value])[index] = redacted;
    });
    return copy ?? value;
  }
  // Only plain data: class instances (a request, an error) have their own serializers.
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted = SECRET_KEY.test(key) && item !== undefined && item !== null ? '[Redacted]' : redactSecrets(item, depth + 1);
    if (redacted !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = redacted;
  }
  return copy ?? value;
}

/**
 * Writes one log line whose fields the caller has already serialized (`fieldsJson`: `"key":value,…`),
 * straight to the logger's stream with pino's own level, time and bindings: for the line every message
 * writes, whose fields iflow builds itself from values that cannot hold a secret (ids, names, statuses,
 * timings). It skips pino's per-key serialization and the formatter's secret scan, which together cost
 * more than the rest of the line's work; the output is the line `logger[level](fields, msg)` writes.
 */
export function writePrebuiltLine(logger: Logger, level: Level, fieldsJson: string, msg: string): void {
  if (!logger.isLevelEnabled(level)) return;
  const internals = logger as unknown as Record<symbol, unknown>;
  const prefix = (internals[pino.symbols.lsCacheSym] as Record<number, string>)[logger.levels.values[level]];
  const time = (internals[pino.symbols.timeSym] as () => string)();
  const chindings = internals[pino.symbols.chindingsSym] as string;
  const stream = internals[pino.symbols.streamSym] as DestinationStream;
  stream.write(`${prefix}${time}${chindings},${fieldsJson},"msg":${JSON.stringify(msg)}${internals[pino.symbols.endSym] as string}`);
}

/**
 * Makes every line `logger` and its children write pass through `scrub` first: each key and string value of it
 * (message, fields, error stack) is cleaned, and a number that is a secret becomes "[Redacted]", so the line stays
 * JSON and what is no secret (time, pid, ids) as it was. For a logger that may be
 * handed secrets known only at run time, such as a message's tokens given to its scripts. Through pino's
 * streamWrite hook, set on this logger alone.
 */
export function scrubLinesOf(logger: Logger, scrub: (text: string) => string): void {
  const internals = logger as unknown as Record<symbol, { streamWrite?: (line: string) => string } | undefined>;
  const hooks = internals[pino.symbols.hooksSym] ?? {};
  const outer = hooks.streamWrite;
  const scrubLine = (line: string): string => {
    // One search of the whole line finds most lines clean; only a line with something to take out is rebuilt.
    if (scrub(line) === line) return line;
    try {
      return `${JSON.stringify(scrubJson(JSON.parse(line), scrub))}\n`;
    } catch {
      return `${JSON.stringify({ msg: 'a log line was withheld: it held a secret and could not be read to clean it' })}\n`;
    }
  };
  internals[pino.symbols.hooksSym] = { ...hooks, streamWrite: outer ? (line) => outer(scrubLine(line)) : scrubLine };
}

function scrubJson(value: unknown, scrub: (text: string) => string): unknown {
  if (typeof value === 'string') return scrub(value);
  // A number that is a secret (a PIN) goes; one that merely holds its digits (a timestamp holding "2026") stays.
  if (typeof value === 'number' || typeof value === 'boolean') return scrub(String(value)) === '[Redacted]' ? '[Redacted]' : value;
  if (Array.isArray(value)) return value.map((item) => scrubJson(item, scrub));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[scrub(key)] = scrubJson(item, scrub);
  return out;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      formatters: { log: (object) => redactSecrets(object) as Record<string, unknown> },
      // Fastify's request, reply and error shapes (it runs without a logger of its own: request-log.ts).
      serializers: {
        err: pino.stdSerializers.err,
        res(reply: { statusCode: number }) {
          return { statusCode: reply.statusCode };
        },
        req(request: { method: string; url: string; hostname?: string; ip?: string }) {
          return { method: request.method, url: redactUrl(request.url), hostname: request.hostname, remoteAddress: request.ip };
        },
      },
    },
    // Without a stream of the caller's: stdout, in chunks of at least 16 KB or every 100 ms (one write
    // per line cost more than the line itself under load); what waits is written when the process exits.
    destination ?? new FdDestination(1, { minLength: 16 * 1024 }),
  );
}

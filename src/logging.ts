import pino, { type DestinationStream, type Logger } from 'pino';

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

const SECRET_QUERY_PARAMETERS = /([?&](?:code|state|token|access_token|refresh_token|id_token|client_secret|password|code_verifier)=)[^&#]*/gi;

/** A URL fit for a log line: values of query parameters that carry secrets are replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_PARAMETERS, '$1[Redacted]');
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
 * Marks a log object whose fields iflow built itself from values that cannot hold a secret (ids,
 * names, statuses, numbers): the formatter passes it through without its key scan, which would
 * otherwise run on every message's line. The exact redact paths still apply.
 */
export const BUILT_FROM_SAFE_FIELDS: unique symbol = Symbol('iflow.builtFromSafeFields');

/**
 * Where log lines go when the caller gives no stream: stdout, written in chunks of up to 4 KB (or
 * every 100 ms, whichever comes first) rather than one write per line, which under load cost a
 * write on the thread pool per message. pino flushes what is left when the process exits.
 */
function stdoutDestination(): DestinationStream {
  return pino.destination({ fd: process.stdout.fd || 1, minLength: 4096, periodicFlush: 100, sync: false } as never);
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      formatters: { log: (object) => (BUILT_FROM_SAFE_FIELDS in object ? object : (redactSecrets(object) as Record<string, unknown>)) },
      serializers: {
        req(request: { method: string; url: string; hostname?: string; ip?: string }) {
          return { method: request.method, url: redactUrl(request.url), hostname: request.hostname, remoteAddress: request.ip };
        },
      },
    },
    destination ?? stdoutDestination(),
  );
}

import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino censors in every log line. Fastify's request serializer logs no headers, but
 * anything else that ever logs a header bag, a credential or a token object is covered here.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.Authorization',
  'headers.cookie',
  'headers.Cookie',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers.cookie',
  'password',
  '*.password',
  'clientSecret',
  '*.clientSecret',
  'client_secret',
  '*.client_secret',
  'accessToken',
  '*.accessToken',
  'access_token',
  '*.access_token',
  'refreshToken',
  '*.refreshToken',
  'refresh_token',
  '*.refresh_token',
  'id_token',
  '*.id_token',
  'code_verifier',
  '*.code_verifier',
  'secret',
  '*.secret',
  'token',
  '*.token',
];

const SECRET_QUERY_PARAMETERS = /([?&](?:code|state|token|access_token|refresh_token|id_token|client_secret|password|code_verifier)=)[^&#]*/gi;

/** A URL fit for a log line: values of query parameters that carry secrets are replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_PARAMETERS, '$1[Redacted]');
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      serializers: {
        req(request: { method: string; url: string; hostname?: string; ip?: string }) {
          return { method: request.method, url: redactUrl(request.url), hostname: request.hostname, remoteAddress: request.ip };
        },
      },
    },
    destination,
  );
}

import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { ClientAuthentication, FailingStatus, LastError } from './types.ts';
import { formEncode, redactEchoes } from '../security/redact.ts';
import { retryAfterMs } from '../config/duration.ts';

/** A successful token response (RFC 6749 §5.1), as far as iflow uses it. */
export interface TokenResponse {
  accessToken: string;
  tokenType: string;
  /** Seconds the access token lives (3600 when the server does not say). */
  expiresIn: number;
  refreshToken?: string;
  idToken?: string;
  scope?: string;
}

export type ErrorClass = FailingStatus | 'transient';

/**
 * A failed token request. `classification` drives the credential's status: a failing status, or
 * `transient` (timeouts, network errors, 5xx, 429, temporarily_unavailable, server_error), which is
 * retried and leaves the status alone. Holds no secret: descriptions are scrubbed of every value sent.
 */
export class TokenEndpointError extends Error {
  override name = 'TokenEndpointError';
  constructor(
    readonly classification: ErrorClass,
    readonly details: Omit<LastError, 'at'>,
    /** Retry-After of a 429/503, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(`token endpoint answered ${details.httpStatus ?? 'nothing'}: ${details.error}${details.errorCodes.length ? ` (AADSTS${details.errorCodes.join(', AADSTS')})` : ''}`);
  }

  toLastError(at = new Date()): LastError {
    return { ...this.details, at: at.toISOString() };
  }

  /**
   * The server throttles this client (429, or Entra's 50196 "loop detected", which comes as a 400): asking again at
   * once is what it throttles, so a try is not repeated within a message and the credential waits (its Retry-After,
   * or THROTTLED_WAIT_MS without one).
   */
  get throttled(): boolean {
    return this.details.httpStatus === 429 || this.details.errorCodes.some((code) => THROTTLING_CODES.has(code));
  }
}

/** How long a throttled credential waits without a Retry-After: Entra's loop detection lasts about two minutes. */
export const THROTTLED_WAIT_MS = 60_000;

// MICROSOFT.md, "Error → credential status". Codes decide first, then the OAuth error.
const REAUTHORIZATION_CODES = new Set([70008, 700082, 700084, 50173, 50076, 50079, 50078, 70043, 54005]);
const CONSENT_CODES = new Set([65001, 65004]);
const MISCONFIGURED_CODES = new Set([7000222, 7000215, 700016, 50011, 70004, 70011]);
const BLOCKED_CODES = new Set([53003, 53000, 53001, 50057, 50053]);
const TRANSIENT_ERRORS = new Set(['temporarily_unavailable', 'server_error']);
// 50196, "loop detected": too many identical token requests. Throttling, whatever `error` it comes with: the grant is fine.
const THROTTLING_CODES = new Set([50196]);

/** Classifies a token endpoint's error answer by `error`, Entra's `error_codes` and the HTTP status — never by the description. */
export function classifyTokenError(httpStatus: number | undefined, error: string | undefined, errorCodes: readonly number[]): ErrorClass {
  for (const code of errorCodes) {
    if (THROTTLING_CODES.has(code)) return 'transient';
    if (BLOCKED_CODES.has(code)) return 'blocked';
    if (CONSENT_CODES.has(code)) return 'consent-required';
    if (REAUTHORIZATION_CODES.has(code)) return 'reauthorization-required';
    if (MISCONFIGURED_CODES.has(code)) return 'misconfigured';
  }
  if (error !== undefined && TRANSIENT_ERRORS.has(error)) return 'transient';
  if (httpStatus === undefined || httpStatus >= 500 || httpStatus === 429 || httpStatus === 408) return 'transient';
  switch (error) {
    case 'invalid_grant':
    case 'interaction_required':
    case 'login_required':
      return 'reauthorization-required';
    case 'consent_required':
      return 'consent-required';
    case 'access_denied':
      return 'blocked';
    default:
      // invalid_client, unauthorized_client, invalid_scope, invalid_request, unsupported_grant_type,
      // and any other 4xx: the admin has to look at the credential.
      return 'misconfigured';
  }
}

export interface TokenClient {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  clientAuthentication: ClientAuthentication;
}

export interface TokenRequestOptions {
  /** Whole request, connect to body (default 20 s). */
  timeoutMs?: number;
}

/** Text shown of a token endpoint's answer; a longer one is cut first (scrubbing a megabyte would cost ~0.1 s). */
const SHOWN = 2000;
/**
 * Replaces every secret value we sent with [Redacted], in case a server echoes one back: as sent (raw,
 * form-encoded in the body, JSON-escaped), and inside base64 (the Basic header's `id:secret`, however it lines up).
 */
export function scrub(text: string | undefined, secrets: readonly (string | undefined)[]): string | undefined {
  if (text === undefined) return undefined;
  const out = redactEchoes(text.slice(0, 4 * SHOWN), secrets);
  return out.length > SHOWN ? `${out.slice(0, SHOWN)}…` : out;
}

function numberList(value: unknown): number[] {
  return Array.isArray(value) ? value.map(Number).filter((n) => Number.isInteger(n)) : [];
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Reads an OAuth error body (JSON or not) into LastError details. */
export function errorDetails(httpStatus: number | undefined, body: unknown, grantType: string, secrets: readonly (string | undefined)[], fallbackCorrelationId?: string): Omit<LastError, 'at'> {
  const json = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const error = stringOrUndefined(json.error) ?? (httpStatus === undefined ? 'network_error' : `http_${httpStatus}`);
  return {
    error: scrub(error, secrets)!.slice(0, 200),
    errorCodes: numberList(json.error_codes),
    description: scrub(stringOrUndefined(json.error_description), secrets),
    // Ids by contract, but a server's text all the same: shown, logged and stored like the description.
    traceId: scrub(stringOrUndefined(json.trace_id), secrets)?.slice(0, 200),
    correlationId: scrub(stringOrUndefined(json.correlation_id), secrets)?.slice(0, 200) ?? fallbackCorrelationId,
    httpStatus,
    grantType,
  };
}

/**
 * The longest `expires_in` believed (a year). Entra's tokens live about an hour (at most a day); a larger value is a
 * server's mistake, and one past JavaScript's date range (~1e11 s) would make every time computed from it invalid, so
 * tokens the server already issued (a rotated refresh token too) would be lost.
 */
export const MAX_EXPIRES_IN_SECONDS = 365 * 24 * 3600;

/**
 * The most of a token endpoint's answer that is read (1 MiB): Entra's are a few KB (an id_token included). A larger
 * one is not a token response (a tokenUrl pointing at something else, or a broken server), and is not held in memory.
 */
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

/** What a 2xx answer that is no token response says of itself. */
export function notATokenResponse(statusCode: number, tooLarge: boolean): string {
  const what = tooLarge ? `more than ${MAX_TOKEN_RESPONSE_BYTES} bytes` : 'no access_token';
  return `the token endpoint answered ${statusCode} with ${what} (is tokenUrl right?)`;
}

/** The body's text, or undefined once it passes `max` bytes (then the rest is not read). */
async function textUpTo(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Validates a successful token response body. */
export function parseTokenResponse(body: unknown): TokenResponse | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const json = body as Record<string, unknown>;
  const accessToken = stringOrUndefined(json.access_token);
  if (!accessToken) return undefined;
  const expiresIn = Number(json.expires_in);
  return {
    accessToken,
    tokenType: stringOrUndefined(json.token_type) ?? 'Bearer',
    expiresIn: Number.isFinite(expiresIn) && expiresIn > 0 ? Math.min(expiresIn, MAX_EXPIRES_IN_SECONDS) : 3600,
    refreshToken: stringOrUndefined(json.refresh_token),
    idToken: stringOrUndefined(json.id_token),
    scope: stringOrUndefined(json.scope),
  };
}

/**
 * POSTs a grant to the token endpoint (undici, explicit timeouts) and returns the parsed answer;
 * throws TokenEndpointError (classified) on anything else. Used for refresh_token and
 * client_credentials grants; one attempt, retries are the caller's business.
 */
export async function requestToken(client: TokenClient, grant: Record<string, string>, options: TokenRequestOptions = {}): Promise<TokenResponse> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const params = new URLSearchParams(grant);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'user-agent': 'iflow',
    // Entra echoes it as the correlation id of its answer: what Microsoft support asks for.
    'client-request-id': randomUUID(),
  };
  if (client.clientAuthentication === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`).toString('base64')}`;
  } else {
    params.set('client_id', client.clientId);
    params.set('client_secret', client.clientSecret);
  }
  const secrets = [client.clientSecret, grant.refresh_token, grant.code, grant.code_verifier];
  const grantType = grant.grant_type ?? 'unknown';

  let statusCode: number;
  let text: string | undefined;
  let retryAfter: string | string[] | undefined;
  try {
    const response = await request(client.tokenUrl, {
      method: 'POST',
      headers,
      body: params.toString(),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    statusCode = response.statusCode;
    retryAfter = response.headers['retry-after'];
    text = await textUpTo(response.body, MAX_TOKEN_RESPONSE_BYTES);
  } catch (err) {
    const e = err as { name?: string; code?: string };
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError' || (e.code ?? '').includes('TIMEOUT');
    throw new TokenEndpointError('transient', {
      error: timedOut ? 'timeout' : 'network_error',
      errorCodes: [],
      description: timedOut ? `no answer from the token endpoint within ${timeoutMs} ms` : `could not reach the token endpoint (${e.code ?? e.name ?? 'error'})`,
      correlationId: headers['client-request-id'],
      grantType,
    });
  }

  let body: unknown;
  try {
    body = text === undefined ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (statusCode >= 200 && statusCode < 300) {
    const token = parseTokenResponse(body);
    if (token) return token;
    throw new TokenEndpointError('misconfigured', {
      error: 'invalid_response',
      errorCodes: [],
      description: notATokenResponse(statusCode, text === undefined),
      httpStatus: statusCode,
      correlationId: headers['client-request-id'],
      grantType,
    });
  }
  const details = errorDetails(statusCode, body, grantType, secrets, headers['client-request-id']);
  if (body === undefined && details.description === undefined) details.description = `the token endpoint answered HTTP ${statusCode} without an OAuth error body`;
  throw new TokenEndpointError(classifyTokenError(statusCode, stringOrUndefined((body as Record<string, unknown> | undefined)?.error), details.errorCodes), details, retryAfterMs(retryAfter));
}

/**
 * The user named by an id_token (preferred_username, upn, email, unique_name), decoded without
 * verification: it comes straight from the token endpoint over TLS.
 */
export function userFromIdToken(idToken: string | undefined): string | undefined {
  if (!idToken) return undefined;
  const payload = idToken.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    for (const claim of ['preferred_username', 'upn', 'email', 'unique_name']) {
      const value = claims[claim];
      if (typeof value === 'string' && value !== '') return value.slice(0, 256);
    }
  } catch {
    // not a JWT: no user
  }
  return undefined;
}

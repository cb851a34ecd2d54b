/**
 * An error that maps to an HTTP status and an `{ error: { code, message } }` body; with `retryAfterSeconds`, the reply
 * also carries `Retry-After` (a 503 that knows when sending again makes sense).
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; messageId?: string; details?: unknown };
}

/**
 * The property an ajv `additionalProperties` error is about (ajv's own message does not name it), or undefined for
 * any other error. One reader for the flow loader, the flows' body validation and the API's request validation.
 */
export function unknownPropertyOf(error: { keyword: string; params?: unknown }): string | undefined {
  if (error.keyword !== 'additionalProperties') return undefined;
  const name = (error.params as { additionalProperty?: unknown } | undefined)?.additionalProperty;
  return typeof name === 'string' ? name : undefined;
}

export function errorBody(code: string, message: string, extra?: { messageId?: string; details?: unknown }): ErrorBody {
  return { error: { code, message, ...extra } };
}

/** An error that maps to an HTTP status and an `{ error: { code, message } }` body. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; messageId?: string; details?: unknown };
}

export function errorBody(code: string, message: string, extra?: { messageId?: string; details?: unknown }): ErrorBody {
  return { error: { code, message, ...extra } };
}

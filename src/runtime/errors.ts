import { HttpError } from '../errors.ts';

/**
 * Why a message failed. `statusCode` is what the sender's caller gets; `code` is stable for
 * monitoring; the message is safe to show (no stack, no secret). `retryAfterSeconds`: the reply's
 * `Retry-After` (a credential whose token endpoint asked for a pause).
 */
export class MessageFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode = 500,
    readonly extra: { receiverStatus?: number; requestId?: string } = {},
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'MessageFailure';
  }

  /** The same failure (code, status, receiver details, Retry-After) in other words. */
  withMessage(message: string): MessageFailure {
    return new MessageFailure(this.code, message, this.statusCode, this.extra, this.retryAfterSeconds);
  }
}

/**
 * iflow's own HTTP errors (credential errors are) keep their status and code; anything else a step
 * throws, whatever fields it carries, becomes `fallbackCode` with status 500.
 */
export function toMessageFailure(err: unknown, fallbackCode: string): MessageFailure {
  if (err instanceof MessageFailure) return err;
  if (err instanceof HttpError && err.statusCode >= 400 && err.statusCode <= 599) return new MessageFailure(err.code, err.message, err.statusCode, {}, err.retryAfterSeconds);
  const message = err instanceof Error ? err.message : String(err);
  return new MessageFailure(fallbackCode, message, 500);
}

/** Where JSON.parse gave up (its message quotes the text around it, which must not be repeated): " at position N", or "". */
export function jsonErrorPosition(err: unknown): string {
  const position = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
  return position ? ` at position ${position}` : '';
}

/** JSON.parse's own message quotes the body around the error: keep only the position. */
export function malformedJsonMessage(err: unknown): string {
  return `Malformed JSON body${jsonErrorPosition(err)}`;
}

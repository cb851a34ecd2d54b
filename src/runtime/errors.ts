/**
 * Why a message failed. `statusCode` is what the sender's caller gets; `code` is stable for
 * monitoring; the message is safe to show (no stack, no secret).
 */
export class MessageFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode = 500,
    readonly extra: { receiverStatus?: number; requestId?: string } = {},
  ) {
    super(message);
    this.name = 'MessageFailure';
  }
}

/** Anything thrown that carries an HTTP status and a code of its own (credential errors do) keeps them. */
export function toMessageFailure(err: unknown, fallbackCode: string, prefix = ''): MessageFailure {
  if (err instanceof MessageFailure) return err;
  const e = err as { message?: unknown; statusCode?: unknown; code?: unknown } | null;
  const message = e && typeof e.message === 'string' ? e.message : String(err);
  if (e && typeof e.statusCode === 'number' && typeof e.code === 'string') return new MessageFailure(e.code, message, e.statusCode);
  return new MessageFailure(fallbackCode, prefix + message, 500);
}

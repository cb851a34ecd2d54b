import type { Dispatcher } from 'undici';
import { MessageFailure } from '../errors.ts';

/** A receiver's reply, read whole. */
export interface Answer {
  statusCode: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
}

/** Where a request goes, as undici dispatches it (URL getters build their strings on every call). */
export interface ExchangeTarget {
  origin: string;
  /** Path and query. */
  path: string;
  /** host[:port], for messages. */
  host: string;
}

/** The parts of `url` an exchange needs. */
export function exchangeTarget(url: URL): ExchangeTarget {
  return { origin: url.origin, path: url.pathname + url.search, host: url.host };
}

export interface ExchangeRequest {
  target: ExchangeTarget;
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body: Buffer | string | undefined;
  /** The whole exchange (queueing, connecting, sending, the reply's last byte) must end within this. */
  timeoutMs: number;
  /** A reply body larger than this fails the exchange. */
  maxResponseBytes: number;
}

/**
 * Collects one reply through undici's dispatch API: the chunks go straight into an array, with no
 * Readable stream, async iterator or AbortSignal per request (each of those showed in the hot path's
 * profile). It settles once; a timeout or an oversized reply aborts the request on its connection.
 */
class ReplyCollector implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private statusCode = 0;
  private headers: Answer['headers'] = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  /** Why the exchange was given up (timeout, size) before undici reported an end of its own. */
  private reason: MessageFailure | undefined;
  readonly timer: NodeJS.Timeout;

  constructor(
    readonly request: ExchangeRequest,
    private readonly resolve: (answer: Answer) => void,
    private readonly reject: (failure: MessageFailure) => void,
  ) {
    this.timer = setTimeout(timeOut, request.timeoutMs, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.reason) controller.abort(this.reason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Answer['headers']): void {
    if (statusCode < 200) return; // informational: the real answer follows
    this.statusCode = statusCode;
    this.headers = headers;
    if (Number(headers['content-length']) > this.request.maxResponseBytes) this.giveUp(this.tooLarge());
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    if (this.size > this.request.maxResponseBytes) this.giveUp(this.tooLarge());
    else this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settle()) this.resolve({ statusCode: this.statusCode, headers: this.headers, body: this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size) });
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.settle()) return;
    const e = err as { code?: string; message?: string };
    this.reject(new MessageFailure('RECEIVER_UNREACHABLE', `receiver ${this.request.target.host} unreachable: ${e.code ?? e.message ?? 'connection failed'}`, 502));
  }

  /** Fails the exchange now and aborts the request (at once, or as soon as undici starts it). */
  giveUp(failure: MessageFailure): void {
    if (!this.settle()) return;
    this.reason = failure;
    this.reject(failure);
    if (this.controller && !this.controller.aborted) this.controller.abort(failure);
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    return true;
  }

  private tooLarge(): MessageFailure {
    return new MessageFailure('RECEIVER_RESPONSE_TOO_LARGE', `receiver ${this.request.target.host} answered more than ${this.request.maxResponseBytes} bytes`, 502);
  }
}

/** The timer's callback: a module-level function, so arming the timer allocates no closure. */
function timeOut(collector: ReplyCollector): void {
  const { target, timeoutMs } = collector.request;
  collector.giveUp(new MessageFailure('RECEIVER_TIMEOUT', `receiver ${target.host} did not answer within ${timeoutMs} ms`, 504));
}

/** One request-reply with a receiver within `timeoutMs`; fails with a MessageFailure (502 or 504). */
export function exchange(dispatcher: Dispatcher, request: ExchangeRequest): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const collector = new ReplyCollector(request, resolve, reject);
    const { target, method, headers, body } = request;
    try {
      dispatcher.dispatch({ origin: target.origin, path: target.path, method, headers, body }, collector);
    } catch (err) {
      collector.onResponseError(undefined as unknown as Dispatcher.DispatchController, err as Error);
    }
  });
}

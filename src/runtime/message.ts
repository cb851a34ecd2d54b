/** The message a flow processes: body, headers and properties, as in CPI's Message API. */
import { MessageFailure, jsonErrorPosition } from './errors.ts';

type Body = Buffer | string | unknown;

/** Set by the class below: marks a message's body as the caller's, as received (see markBodyFromCaller). */
let markFromCaller: (message: Message) => void;
/** Set by the class below: the body as it is cheapest to send (see bodyForSending). */
let sendableBody: (message: Message) => Buffer | string;

const EMPTY_BODY = Buffer.alloc(0);

/**
 * Headers are matched case-insensitively (they mostly come from and go to HTTP) but keep the
 * case they were set with. The body is kept in whatever form it was last set and converted on
 * demand, each conversion cached, so a JSON body is parsed at most once per set.
 */
export class Message {
  readonly id: string;
  readonly correlationId: string;
  /** HTTP status of the reply to the sender; receivers' statuses land here. */
  status = 200;
  private readonly headerMap = new Map<string, { name: string; value: string }>();
  /** Made on the first setProperty: most messages never have one. */
  private propertyMap: Map<string, unknown> | undefined;
  private bodyBuffer: Buffer | undefined;
  private bodyString: string | undefined;
  private bodyJson: unknown;
  private hasJson = false;
  /** How the body was last set; conversions cached later do not change it. */
  private bodyKind: 'bytes' | 'text' | 'json' = 'bytes';
  /** The body is still the one the caller sent: reading it as JSON and failing is the caller's error (400), not the flow's. */
  #bodyFromCaller = false;

  // Runtime-only access, kept off the class: scripts see Message's type, and these are not part of the script API.
  static {
    markFromCaller = (message) => {
      message.#bodyFromCaller = true;
    };
    sendableBody = (message) => message.bodyBuffer ?? message.getBodyAsString();
  }

  constructor(init: { id: string; correlationId: string; body?: Body; headers?: Record<string, string> }) {
    this.id = init.id;
    this.correlationId = init.correlationId;
    this.setBody(init.body ?? EMPTY_BODY);
    if (init.headers) for (const [name, value] of Object.entries(init.headers)) this.setHeader(name, value);
  }

  getBody(): Buffer {
    if (this.bodyBuffer === undefined) this.bodyBuffer = Buffer.from(this.getBodyAsString(), 'utf8');
    return this.bodyBuffer;
  }

  getBodyAsString(): string {
    if (this.bodyString === undefined) {
      this.bodyString = this.bodyBuffer !== undefined ? this.bodyBuffer.toString('utf8') : JSON.stringify(this.bodyJson) ?? '';
    }
    return this.bodyString;
  }

  /**
   * The body parsed as JSON (cached); throws a SyntaxError when it is not JSON, or, while the body is still the
   * caller's, a 400 INVALID_JSON failure (the caller sent something else than the flow reads).
   */
  getBodyAsJson<T = unknown>(): T {
    if (!this.hasJson) {
      const text = this.getBodyAsString();
      try {
        this.bodyJson = text === '' ? null : JSON.parse(text);
      } catch (err) {
        if (!this.#bodyFromCaller) throw err;
        throw new MessageFailure('INVALID_JSON', `This flow reads the body as JSON, and the body sent is not JSON (malformed${jsonErrorPosition(err)})`, 400);
      }
      this.hasJson = true;
    }
    return this.bodyJson as T;
  }

  /** True when the body was set as a value (object, array, number…) rather than text or bytes. */
  isJsonBody(): boolean {
    return this.bodyKind === 'json';
  }

  /** A Buffer or string is taken as the raw body; anything else becomes a JSON body. */
  setBody(body: Body): void {
    this.#bodyFromCaller = false;
    this.bodyBuffer = undefined;
    this.bodyString = undefined;
    this.bodyJson = undefined;
    this.hasJson = false;
    if (Buffer.isBuffer(body)) {
      this.bodyBuffer = body;
      this.bodyKind = 'bytes';
    } else if (typeof body === 'string') {
      this.bodyString = body;
      this.bodyKind = 'text';
    } else if (body instanceof Uint8Array) {
      this.bodyBuffer = Buffer.from(body);
      this.bodyKind = 'bytes';
    } else {
      this.bodyJson = body;
      this.hasJson = true;
      this.bodyKind = 'json';
    }
  }

  /** Sets an already-parsed JSON value together with the text it came from, so neither is redone. */
  setJsonBody(value: unknown, raw?: Buffer): void {
    this.setBody(value);
    if (raw) {
      // The bytes as received stay the body (with their own Content-Type); the value is their parse.
      this.bodyBuffer = raw;
      this.bodyKind = 'bytes';
    }
  }

  /**
   * Takes over another message's status, headers, properties and body, keeping this message's id and
   * correlation id (a script that returns a new message cannot pose as another message).
   */
  assign(other: Message): void {
    if (other === this) return;
    this.status = other.status;
    this.headerMap.clear();
    for (const [key, entry] of other.headerMap) this.headerMap.set(key, { ...entry });
    this.propertyMap = other.propertyMap && new Map(other.propertyMap);
    this.bodyBuffer = other.bodyBuffer;
    this.bodyString = other.bodyString;
    this.bodyJson = other.bodyJson;
    this.hasJson = other.hasJson;
    this.bodyKind = other.bodyKind;
    this.#bodyFromCaller = other.#bodyFromCaller;
  }

  getHeader(name: string): string | undefined {
    return this.headerMap.get(name.toLowerCase())?.value;
  }
  setHeader(name: string, value: string | number | boolean): void {
    this.headerMap.set(name.toLowerCase(), { name, value: String(value) });
  }
  removeHeader(name: string): void {
    this.headerMap.delete(name.toLowerCase());
  }
  /** All headers, with the case they were set with. */
  getHeaders(): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const { name, value } of this.headerMap.values()) headers[name] = value;
    return headers;
  }

  getProperty<T = unknown>(name: string): T | undefined {
    return this.propertyMap?.get(name) as T | undefined;
  }
  setProperty(name: string, value: unknown): void {
    (this.propertyMap ??= new Map()).set(name, value);
  }
  removeProperty(name: string): void {
    this.propertyMap?.delete(name);
  }
  getProperties(): Record<string, unknown> {
    return this.propertyMap ? Object.fromEntries(this.propertyMap) : {};
  }
}

/** The body as it is cheapest to send (an http step's request): the text when it is text or JSON (no copy into bytes), else the bytes. */
export function bodyForSending(message: Message): Buffer | string {
  return sendableBody(message);
}

/** The sender marks the body it set from the request, until a step sets another one (see getBodyAsJson). */
export function markBodyFromCaller(message: Message): void {
  markFromCaller(message);
}

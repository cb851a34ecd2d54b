/** The message a flow processes: body, headers and properties, as in CPI's Message API. */

type Body = Buffer | string | unknown;

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
  private readonly propertyMap = new Map<string, unknown>();
  private bodyBuffer: Buffer | undefined;
  private bodyString: string | undefined;
  private bodyJson: unknown;
  private hasJson = false;

  constructor(init: { id: string; correlationId: string; body?: Body; headers?: Record<string, string> }) {
    this.id = init.id;
    this.correlationId = init.correlationId;
    this.setBody(init.body ?? Buffer.alloc(0));
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

  /** The body parsed as JSON (cached); throws a SyntaxError when it is not JSON. */
  getBodyAsJson<T = unknown>(): T {
    if (!this.hasJson) {
      const text = this.getBodyAsString();
      this.bodyJson = text === '' ? null : JSON.parse(text);
      this.hasJson = true;
    }
    return this.bodyJson as T;
  }

  /** True when the body was set as a value (object, array, number…) rather than text or bytes. */
  isJsonBody(): boolean {
    return this.hasJson && this.bodyBuffer === undefined && this.bodyString === undefined;
  }

  /** A Buffer or string is taken as the raw body; anything else becomes a JSON body. */
  setBody(body: Body): void {
    this.bodyBuffer = undefined;
    this.bodyString = undefined;
    this.bodyJson = undefined;
    this.hasJson = false;
    if (Buffer.isBuffer(body)) this.bodyBuffer = body;
    else if (typeof body === 'string') this.bodyString = body;
    else if (body instanceof Uint8Array) this.bodyBuffer = Buffer.from(body);
    else {
      this.bodyJson = body;
      this.hasJson = true;
    }
  }

  /** Sets an already-parsed JSON value together with the text it came from, so neither is redone. */
  setJsonBody(value: unknown, raw?: Buffer): void {
    this.setBody(value);
    if (raw) this.bodyBuffer = raw;
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
    return this.propertyMap.get(name) as T | undefined;
  }
  setProperty(name: string, value: unknown): void {
    this.propertyMap.set(name, value);
  }
  removeProperty(name: string): void {
    this.propertyMap.delete(name);
  }
  getProperties(): Record<string, unknown> {
    return Object.fromEntries(this.propertyMap);
  }
}

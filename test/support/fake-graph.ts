// A stand-in for Microsoft Graph's sendMail that tests start on loopback. Access tokens are
// checked against a FakeEntra, bodies are validated the way Graph does (see
// /work/shared/MICROSOFT.md), and throttling/outages can be injected.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AccessTokenInfo } from './fake-entra.ts';
import { delayUnlessGone } from './delay.ts';

/** What the fake needs from the authorization server: a way to check tokens. */
export interface TokenValidator {
  url: string;
  validateAccessToken(token: string): AccessTokenInfo;
}

export interface FakeGraphOptions {
  entra: TokenValidator;
}

export interface GraphErrorSpec {
  status: number;
  code: string;
  message?: string;
  /** Sent as the Retry-After header (seconds). */
  retryAfterSeconds?: number;
}

export interface SentMail {
  /** Mailbox that sends: the token's user for /me, the path's id or UPN for /users/{x}. */
  user: string;
  message: Record<string, unknown>;
  /** Graph's default is true. */
  saveToSentItems: boolean;
  /** The Authorization header as received. */
  authorization: string;
  at: Date;
  path: string;
  requestId: string;
  clientRequestId: string;
  clientId: string;
  kind: 'delegated' | 'app';
}

export interface GraphRequestRecord {
  method: string;
  path: string;
  at: Date;
  requestId: string;
  clientRequestId: string;
  authorization: string | undefined;
  injected: boolean;
  /** Set just before the response is written. */
  status?: number;
  /** Graph error code answered, if any. */
  code?: string;
}

/** A Graph error to answer with. */
class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
// Properties of microsoft.graph.message that a sendMail body may carry; others are rejected as Graph does.
const MESSAGE_PROPERTIES = new Set([
  'subject', 'body', 'toRecipients', 'ccRecipients', 'bccRecipients', 'replyTo', 'from', 'sender', 'importance',
  'internetMessageHeaders', 'attachments', 'categories', 'flag', 'isDeliveryReceiptRequested', 'isReadReceiptRequested',
  'isDraft', 'isRead', 'inferenceClassification', 'conversationId', 'uniqueBody', 'bodyPreview', 'internetMessageId',
  'singleValueExtendedProperties', 'multiValueExtendedProperties', 'extensions',
]);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const bodyRead = (message: string) => new GraphError(400, 'RequestBodyRead', message);
const notOnType = (property: string, type: string) =>
  bodyRead(`The property '${property}' does not exist on type '${type}'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
// Graph's innerError date has no fractional seconds.
const graphDate = () => new Date().toISOString().replace(/\.\d+Z$/, '');


/** Does a token scope grant Mail.Send to Graph (short name, Graph URI or .default)? */
function grantsMailSend(scope: string): boolean {
  return scope.split(/\s+/).some((s) => /^(?:(?:https:\/\/graph\.microsoft\.com|00000003-0000-0000-c000-000000000000)\/)?(?:mail\.send|\.default)$/i.test(s));
}

/** Is the token's audience Graph? Short scope names mean Graph, as at Entra. */
function isGraphAudience(scope: string): boolean {
  return scope.split(/\s+/).filter(Boolean).some((s) => !s.includes('/') || /^(?:https:\/\/graph\.microsoft\.com|00000003-0000-0000-c000-000000000000)\//i.test(s));
}

function validateRecipients(value: unknown, property: string, required: boolean): number {
  if (value === undefined || value === null) {
    if (required) throw new GraphError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., A message can\'t be sent because it contains no recipients.');
    return 0;
  }
  if (!Array.isArray(value)) throw bodyRead(`Cannot read the value of '${property}': a collection was expected.`);
  for (const recipient of value) {
    if (!isObject(recipient) || !isObject(recipient.emailAddress)) throw bodyRead(`Each item of '${property}' must be an object with 'emailAddress'.`);
    for (const key of Object.keys(recipient)) if (key !== 'emailAddress' && !key.startsWith('@odata.')) throw notOnType(key, 'microsoft.graph.recipient');
    const { address, name } = recipient.emailAddress;
    for (const key of Object.keys(recipient.emailAddress)) if (key !== 'address' && key !== 'name') throw notOnType(key, 'microsoft.graph.emailAddress');
    if (name !== undefined && name !== null && typeof name !== 'string') throw bodyRead("Cannot convert a primitive value to the expected type 'Edm.String' (emailAddress.name).");
    if (typeof address !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(address)) {
      throw new GraphError(400, 'ErrorInvalidRecipients', `At least one recipient is not valid., Recipient '${String(address ?? '')}' is not resolved. All recipients must be resolved before a message can be submitted.`);
    }
  }
  return value.length;
}

function validateBody(value: unknown): void {
  if (value === undefined) return;
  if (!isObject(value)) throw bodyRead("Cannot read 'body': an object of type 'microsoft.graph.itemBody' was expected.");
  for (const key of Object.keys(value)) if (key !== 'contentType' && key !== 'content') throw notOnType(key, 'microsoft.graph.itemBody');
  if (value.contentType !== undefined && !(typeof value.contentType === 'string' && /^(text|html)$/i.test(value.contentType))) {
    throw bodyRead(`Requested value '${String(value.contentType)}' was not found (body.contentType must be Text or HTML).`);
  }
  if (value.content !== undefined && typeof value.content !== 'string') throw bodyRead("Cannot convert a primitive value to the expected type 'Edm.String' (body.content).");
}

function validateAttachments(value: unknown): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw bodyRead("Cannot read the value of 'attachments': a collection was expected.");
  for (const attachment of value) {
    if (!isObject(attachment)) throw bodyRead('Each attachment must be an object.');
    if (attachment['@odata.type'] !== '#microsoft.graph.fileAttachment') {
      throw bodyRead(`Unsupported attachment type '${String(attachment['@odata.type'] ?? '')}': fake Graph sendMail takes '#microsoft.graph.fileAttachment'.`);
    }
    if (typeof attachment.name !== 'string' || attachment.name === '') throw new GraphError(400, 'invalidRequest', 'The attachment name is required.');
    if (attachment.contentType !== undefined && typeof attachment.contentType !== 'string') throw bodyRead("Cannot convert a primitive value to the expected type 'Edm.String' (contentType).");
    if (typeof attachment.contentBytes !== 'string' || !BASE64.test(attachment.contentBytes)) {
      throw bodyRead(`Cannot convert the literal '${String(attachment.contentBytes).slice(0, 20)}' to the expected type 'Edm.Binary'.`);
    }
  }
}

function validateHeaders(value: unknown): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw bodyRead("Cannot read the value of 'internetMessageHeaders': a collection was expected.");
  for (const header of value) {
    if (!isObject(header) || typeof header.name !== 'string' || typeof header.value !== 'string') throw bodyRead('Each internet message header needs string name and value.');
    if (!/^x-/i.test(header.name)) throw new GraphError(400, 'InvalidInternetMessageHeader', `The internet message header name '${header.name}' should start with 'x-' or 'X-'.`);
  }
}

/** Validates a sendMail request body the way Graph does; throws GraphError. */
export function validateSendMail(payload: unknown): { message: Record<string, unknown>; saveToSentItems: boolean } {
  if (!isObject(payload)) throw new GraphError(400, 'invalidRequest', 'Empty Payload. JSON content expected.');
  for (const key of Object.keys(payload)) {
    if (key !== 'message' && key !== 'saveToSentItems') throw bodyRead(`The parameter '${key}' in the request payload is not a valid parameter for the operation 'sendMail'.`);
  }
  const { message, saveToSentItems } = payload;
  if (!isObject(message)) throw new GraphError(400, 'invalidRequest', "The 'message' parameter is required and must be an object.");
  if (saveToSentItems !== undefined && typeof saveToSentItems !== 'boolean') throw bodyRead("Cannot convert a primitive value to the expected type 'Edm.Boolean' (saveToSentItems).");
  for (const key of Object.keys(message)) if (!MESSAGE_PROPERTIES.has(key) && !key.startsWith('@odata.')) throw notOnType(key, 'microsoft.graph.message');
  if (message.subject !== undefined && message.subject !== null && typeof message.subject !== 'string') throw bodyRead("Cannot convert a primitive value to the expected type 'Edm.String' (subject).");
  if (message.importance !== undefined && !(typeof message.importance === 'string' && /^(low|normal|high)$/i.test(message.importance))) {
    throw bodyRead(`Requested value '${String(message.importance)}' was not found (importance).`);
  }
  validateBody(message.body);
  const to = validateRecipients(message.toRecipients, 'toRecipients', false);
  const cc = validateRecipients(message.ccRecipients, 'ccRecipients', false);
  const bcc = validateRecipients(message.bccRecipients, 'bccRecipients', false);
  validateRecipients(message.replyTo, 'replyTo', false);
  // Graph needs at least one recipient in to, cc or bcc.
  if (to + cc + bcc === 0) validateRecipients(undefined, 'toRecipients', true);
  validateAttachments(message.attachments);
  validateHeaders(message.internetMessageHeaders);
  return { message, saveToSentItems: saveToSentItems ?? true };
}

export class FakeGraph {
  /** Accepted mails, in order. */
  readonly sent: SentMail[] = [];
  /** Every request, in arrival order (including rejected and injected ones). */
  readonly requests: GraphRequestRecord[] = [];

  private readonly app: FastifyInstance;
  private readonly entra: TokenValidator;
  private readonly closing = new AbortController();
  private baseUrl = '';
  private injected: { remaining: number; spec: GraphErrorSpec } | undefined;
  private delayMs = 0;

  constructor(options: FakeGraphOptions) {
    this.entra = options.entra;
    // Graph paths are case-insensitive (/me/sendmail works); the 4 MB limit is checked by hand for Graph's 413.
    this.app = Fastify({ logger: false, forceCloseConnections: true, routerOptions: { caseSensitive: false }, bodyLimit: 64 * 1024 * 1024 });
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    this.app.post('/v1.0/me/sendMail', (req, reply) => this.handle(req, reply, undefined));
    this.app.post('/v1.0/users/:mailbox/sendMail', (req, reply) => this.handle(req, reply, (req.params as { mailbox: string }).mailbox));
    this.app.setNotFoundHandler((req, reply) => this.handle(req, reply, null));
  }

  get url(): string {
    return this.baseUrl;
  }

  get requestCount(): number {
    return this.requests.length;
  }

  async listen(): Promise<void> {
    this.baseUrl = await this.app.listen({ port: 0, host: '127.0.0.1' });
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.app.close();
  }

  /** The next `n` requests get `spec` as a Graph error before any other check (still recorded). */
  failNext(n: number, spec: GraphErrorSpec): void {
    this.injected = n > 0 ? { remaining: n, spec } : undefined;
  }

  /** Delays every response by `ms` (0 turns it off); ends early on close or client disconnect. */
  setDelayMs(ms: number): void {
    this.delayMs = ms;
  }

  /** Clears sent mails and the request log (not an injected failure). */
  reset(): void {
    this.sent.length = 0;
    this.requests.length = 0;
  }

  /** @param mailbox undefined for /me, the id/UPN for /users/{x}, null for an unknown route. */
  private async handle(req: FastifyRequest, reply: FastifyReply, mailbox: string | null | undefined): Promise<FastifyReply> {
    const requestId = randomUUID();
    const clientRequestId = String(req.headers['client-request-id'] ?? requestId);
    const record: GraphRequestRecord = {
      method: req.method,
      path: req.url,
      at: new Date(),
      requestId,
      clientRequestId,
      authorization: req.headers.authorization,
      injected: false,
    };
    this.requests.push(record);
    reply.headers({ 'request-id': requestId, 'client-request-id': clientRequestId });
    if (this.delayMs > 0) await delayUnlessGone(reply, this.delayMs, this.closing.signal);
    try {
      if (this.injected) {
        const spec = this.injected.spec;
        if (--this.injected.remaining <= 0) this.injected = undefined;
        record.injected = true;
        if (spec.retryAfterSeconds !== undefined) reply.header('retry-after', String(spec.retryAfterSeconds));
        throw new GraphError(spec.status, spec.code, spec.message ?? 'Injected failure (fake-graph).');
      }
      if (mailbox === null) throw new GraphError(404, 'BadRequest', `Resource not found for the segment '${req.url.split('?')[0] ?? ''}'.`);
      const token = this.authenticate(req, reply);
      const user = this.authorizeMailbox(token, mailbox);
      const { message, saveToSentItems } = validateSendMail(this.readJson(req));
      this.sent.push({ user, message, saveToSentItems, authorization: req.headers.authorization ?? '', at: new Date(), path: req.url, requestId, clientRequestId, clientId: token.clientId, kind: token.kind });
      record.status = 202;
      return reply.code(202).send();
    } catch (err) {
      if (!(err instanceof GraphError)) throw err;
      record.status = err.status;
      record.code = err.code;
      return reply.code(err.status).send({ error: { code: err.code, message: err.message, innerError: { date: graphDate(), 'request-id': requestId, 'client-request-id': clientRequestId } } });
    }
  }

  private authenticate(req: FastifyRequest, reply: FastifyReply): Extract<AccessTokenInfo, { valid: true }> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const unauthorized = (message: string) => {
      reply.header('www-authenticate', `Bearer realm="", authorization_uri="${this.entra.url}/common/oauth2/authorize", client_id="${GRAPH_APP_ID}"`);
      return new GraphError(401, 'InvalidAuthenticationToken', message);
    };
    if (!match?.[1]) throw unauthorized('Access token is empty.');
    const info = this.entra.validateAccessToken(match[1]);
    if (!info.valid) throw unauthorized(info.reason === 'expired' ? 'Lifetime validation failed, the token is expired.' : 'IDX14100: JWT is not well formed, there are no dots (.).');
    if (!isGraphAudience(info.scope)) throw unauthorized('Access token validation failure. Invalid audience.');
    return info;
  }

  /** Which mailbox sends, or why this token may not send from it. */
  private authorizeMailbox(token: Extract<AccessTokenInfo, { valid: true }>, mailbox: string | undefined): string {
    const denied = () => new GraphError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    if (mailbox === undefined) {
      // Graph answers 400 (not 403) to /me with an app-only token.
      if (token.user === undefined) throw new GraphError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
      if (!grantsMailSend(token.scope)) throw denied();
      return token.user;
    }
    if (!mailbox.includes('@') && !/^[0-9a-f-]{36}$/i.test(mailbox)) throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);
    // App tokens may send as anyone (Mail.Send application permission); a delegated token only as its own user.
    if (token.user !== undefined && (token.user.toLowerCase() !== mailbox.toLowerCase() || !grantsMailSend(token.scope))) throw denied();
    return mailbox;
  }

  private readJson(req: FastifyRequest): unknown {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (raw.length > MAX_REQUEST_BYTES) throw new GraphError(413, 'RequestEntityTooLarge', 'Maximum request length exceeded. The maximum request length supported is 4MB.');
    if (raw.length === 0) throw new GraphError(400, 'invalidRequest', 'Empty Payload. JSON content expected.');
    if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      throw new GraphError(415, 'UnsupportedMediaType', 'Content-Type must be application/json.');
    }
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch {
      throw new GraphError(400, 'invalidRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    }
  }

}

/** Starts a fake Microsoft Graph on 127.0.0.1 (random port) checking tokens with `entra`. */
export async function startFakeGraph(options: FakeGraphOptions): Promise<FakeGraph> {
  const graph = new FakeGraph(options);
  await graph.listen();
  return graph;
}

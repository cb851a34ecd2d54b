import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchemaValidationError } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import type { Config } from './config/index.ts';
import { createLogger, redactUrl } from './logging/index.ts';
import { logRequests, RequestLogController, type ShutdownGate } from './logging/request-log.ts';
import { throttledWarning, type ThrottledWarning } from './logging/throttled-warning.ts';
import { openStore, type Store } from './store/index.ts';
import { storeUnavailableReason } from './store/unavailable.ts';
import { HttpError, errorBody, unknownPropertyOf } from './errors.ts';
import { securityPlugin } from './security/index.ts';
import { usersRoutes } from './admin/users.ts';
import { monitorPlugin } from './monitor/index.ts';
import { credentialsPlugin } from './credentials/index.ts';
import { flowsRoutes } from './admin/flows.ts';
import { uiRoutes } from './admin/ui.ts';
import { deployFlows, type FlowRegistry } from './flows/registry.ts';
import { senderRoutes } from './runtime/sender.ts';
import { malformedJsonMessage } from './runtime/errors.ts';
import { jsonTextProblem } from './runtime/json-text.ts';
import { Agent } from 'undici';
import type { SecurityMaterial } from './runtime/context.ts';
import { within } from './deadline.ts';

export interface AppOptions {
  config: Config;
  /** Where JSON log lines go (stdout when unset); tests pass a capturing stream. */
  logStream?: DestinationStream;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    store: Store;
    /** Set at shutdown: whether the store closed within its bound (else its connections go with the process). */
    storeClosed: boolean;
    flows: FlowRegistry;
    securityMaterial: SecurityMaterial;
  }
}

function isAdminPath(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/itspaces/') || url.startsWith('/OAuthTokenFromCode');
}

/** The contract's code for a Fastify 4xx error of this status (other than the ones errorHandler names itself). */
const FASTIFY_STATUS_CODES: Record<number, string> = { 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED', 406: 'NOT_ACCEPTABLE', 431: 'HEADERS_TOO_LARGE' };

/** At most this many problems of one request body are listed (a body of 5000 unknown keys must not get a 1 MB answer). */
const MAX_LISTED_PROBLEMS = 100;
const MAX_NAMED_UNKNOWN = 10;

/**
 * The admin API reads JSON only, as UTF-8 only: other bytes would be read as U+FFFD, and two different passwords
 * could then be one. Flow endpoints have their own parsers (runtime/sender.ts).
 */
function acceptJsonOnly(app: FastifyInstance) {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) {
      // Clients that set Content-Type on every call (a DELETE with none of a body) have sent no body, not a bad one.
      if (!METHODS_WITH_BODY.has(request.method)) return done(null, undefined);
      return done(new HttpError(400, 'INVALID_JSON', 'The JSON body is empty'), undefined);
    }
    // A client that says its JSON is in another charset means it: read as UTF-8, its text would be another.
    const charset = DECLARED_CHARSET.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !UTF8_CHARSET.test(charset)) {
      return done(new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type charset ${charset.slice(0, 40)} is not accepted here: send application/json in UTF-8`), undefined);
    }
    // The reviver below recurses: a body nested deeper than any request needs is refused before it overflows.
    const unfit = jsonTextProblem(bytes, ADMIN_JSON_DEPTH);
    if (unfit) return done(new HttpError(400, 'INVALID_JSON', unfit), undefined);
    // A UTF-8 byte order mark is allowed (as Fastify's own parser allows it): JSON.parse would refuse it.
    const text = bytes.toString('utf8', hasByteOrderMark(bytes) ? 3 : 0);
    try {
      // JSON.parse's errors keep their position (errorHandler words them); a key that could reach a prototype
      // when the value is merged somewhere is refused by name, as secure-json-parse (Fastify's own) would.
      done(null, JSON.parse(text, refusePrototypeKeys));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

const DECLARED_CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;
/** UTF-8, and US-ASCII, which is UTF-8's subset: text in it reads the same. */
const UTF8_CHARSET = /^(?:utf-?8|us-ascii)$/i;

/** The methods whose admin routes read a body: an empty one there is an error, elsewhere no body at all. */
const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** No admin request body nests deeper than a few levels: 64 leaves room for any. */
const ADMIN_JSON_DEPTH = 64;

function hasByteOrderMark(bytes: Buffer): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

function refusePrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype'))) {
    throw new HttpError(400, 'INVALID_JSON', 'Malformed JSON body: keys named "__proto__", or "constructor" holding a "prototype", are not accepted');
  }
  return value;
}

/** A validation problem with the request's own text in it (an unknown key's name) cut to 100 characters. */
function shortened(problem: FastifySchemaValidationError): FastifySchemaValidationError {
  const unknown = problem.params?.additionalProperty;
  if (typeof unknown !== 'string' || unknown.length <= 100) return problem;
  return { ...problem, params: { ...problem.params, additionalProperty: `${unknown.slice(0, 100)}…` } };
}

/** How long closing the store may take at shutdown before the process leaves its connections behind (after the
 * message log writer's 5 s, inside the whole stop's 8 s: main.ts). */
const STORE_CLOSE_MS = 2000;

/** How long a caller is asked to wait before sending again while the store cannot be reached. */
const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * Maps any error thrown in a route to the JSON error contract, without stack traces. A store that cannot be
 * reached (PostgreSQL down or restarting, SQLite locked by another process) is a 503 to send again, logged
 * through `storeTrouble` (once, then counted), not a 500 with a stack per request.
 */
function errorHandlerWith(storeTrouble: ThrottledWarning) {
  return function errorHandler(this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    const reason = storeUnavailableReason(err);
    if (reason === undefined) return answerError(err, request, reply);
    storeTrouble.note({ reason, method: request.method, url: redactUrl(request.url) });
    return reply
      .code(503)
      .header('Retry-After', String(STORE_RETRY_AFTER_SECONDS))
      .send(errorBody('STORE_UNAVAILABLE', 'The store (database) cannot be reached, or has no connection free, right now: send the request again shortly'));
  };
}

function answerError(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof HttpError) {
    if (err.retryAfterSeconds !== undefined) reply.header('Retry-After', String(err.retryAfterSeconds));
    return reply.code(err.statusCode).send(errorBody(err.code, err.message, err.details === undefined ? undefined : { details: err.details }));
  }
  if (err.validation) {
    // ajv's text says "must NOT have additional properties" without naming them: the details do, so name them here too.
    const unknown = err.validation.map(unknownPropertyOf).filter((name) => name !== undefined);
    const more = unknown.length > MAX_NAMED_UNKNOWN ? ` and ${unknown.length - MAX_NAMED_UNKNOWN} more` : '';
    const named = unknown.slice(0, MAX_NAMED_UNKNOWN).map((name) => JSON.stringify(name.slice(0, 100)));
    const message = unknown.length > 0 ? `${err.message.slice(0, 1000)} (unknown: ${named.join(', ')}${more})` : err.message.slice(0, 1000);
    return reply.code(400).send(errorBody('BAD_REQUEST', message, { details: err.validation.slice(0, MAX_LISTED_PROBLEMS).map(shortened) }));
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE', 'Request body is larger than this endpoint accepts'));
  // JSON.parse's, from acceptJsonOnly (Fastify's own JSON parser, whose FST_ERR_CTP_* codes were read here, is gone).
  if (err instanceof SyntaxError) {
    return reply.code(400).send(errorBody('INVALID_JSON', malformedJsonMessage(err)));
  }
  if (status >= 400 && status < 500) {
    // Fastify's own codes (FST_ERR_…) name its internals: callers get the contract's.
    if (err.code !== undefined && !err.code.startsWith('FST_')) return reply.code(status).send(errorBody(err.code, err.message));
    if (status === 415) {
      const type = JSON.stringify(String(request.headers['content-type'] ?? '').slice(0, 100));
      return reply.code(415).send(errorBody('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${type} is not accepted here: send application/json`));
    }
    return reply.code(status).send(errorBody(FASTIFY_STATUS_CODES[status] ?? 'BAD_REQUEST', err.message));
  }
  request.log.error({ err }, 'unhandled error');
  return reply.code(500).send(errorBody('INTERNAL_ERROR', 'Internal server error'));
}

/**
 * Once the app starts closing, requests that still arrive (on keep-alive connections busy with a request, which
 * are not closed yet) are refused with 503 SHUTTING_DOWN and `Connection: close`, so clients and load balancers
 * go elsewhere, while messages already running finish; /ready answers `{ status: 'STOPPING' }` instead. The
 * first refusal is logged at once, their count every 10 s and when the app has closed. (Fastify's own 503 has a
 * body of its own and, with no Fastify logger, logs nothing.) The check runs in logRequests' hook, the first of
 * every request, rather than in a hook of its own on every message.
 */
function shutdownGate(app: FastifyInstance, logger: Logger): ShutdownGate {
  const refusals = throttledWarning(app, logger, {
    message: 'shutting down: requests still arriving are refused with 503',
    summary: 'requests still refused with 503 while shutting down',
  });
  const gate: { -readonly [K in keyof ShutdownGate]: ShutdownGate[K] } = {
    closing: false,
    refuse(request, reply) {
      if (request.url === '/ready') return false;
      refusals.note({ method: request.method, url: redactUrl(request.url) });
      reply
        .code(503)
        .header('Connection', 'close')
        .send(errorBody('SHUTTING_DOWN', 'This iflow instance is shutting down: send the request again, to another instance or once it is back'));
      return true;
    },
  };
  app.addHook('preClose', (done) => {
    gate.closing = true;
    done();
  });
  return gate;
}

/** Builds the whole server: store, security, flows, runtime, monitor and admin, wired together. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const logger = createLogger(config.logLevel, options.logStream);
  // No logger of Fastify's own: logRequests gives routes iflow's, and logs admin requests only (flow
  // endpoints log one line per finished message themselves; probes are noise).
  const app = Fastify({
    logController: new RequestLogController(),
    // Forwarded headers only from the proxies the operator names: else any caller could set the logged address.
    trustProxy: config.trustProxy,
    bodyLimit: 10 * 1024 * 1024,
    // shutdownGate answers instead, in iflow's error contract and with a log line.
    return503OnClosing: false,
    // Flow endpoints match case-insensitively (as CPI's do): fold the /http/ prefix so the route matches,
    // the registry lowercases the rest.
    rewriteUrl: (request) => {
      const url = request.url ?? '/';
      return /^\/http\//i.test(url) && !url.startsWith('/http/') ? `/http/${url.slice(6)}` : url;
    },
    forceCloseConnections: 'idle',
    // Errors Fastify raises before routing (a malformed URL) answer in the same JSON contract.
    frameworkErrors: (err, _request, reply) => {
      // Fastify's text quotes the path: a segment of any length, so it is worded here without it.
      if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return void (reply as FastifyReply).code(414).send(errorBody('URI_TOO_LONG', 'A part of the path is longer than 100 characters'));
      // Nor the URL of a bad one: its query string may carry a secret (a code, a key) the answer must not repeat.
      if (err.code === 'FST_ERR_BAD_URL') return void (reply as FastifyReply).code(400).send(errorBody('BAD_URL', 'The URL holds a %-escape that is not valid UTF-8 (such as %ZZ or %FF)'));
      (reply as FastifyReply).code(400).send(errorBody('BAD_REQUEST', err.message));
    },
    // Requests Node's HTTP parser refuses (headers too large, garbage) get a JSON answer too.
    clientErrorHandler: (err, socket) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify(errorBody(status === 431 ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST', status === 431 ? 'Request headers are too large' : 'Malformed HTTP request'));
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else socket.destroy(err);
    },
    // Unknown properties are rejected, not silently dropped: a typo in a request must not pass as valid.
    ajv: { customOptions: { removeAdditional: false, allErrors: true, coerceTypes: false, useDefaults: true } },
  });
  const shutdown = shutdownGate(app, logger);
  logRequests(app, logger, isAdminPath, shutdown);
  const store = await openStore(config);
  app.log.info({ store: store.kind, ...store.settings }, 'store opened');
  app.decorate('config', config);
  app.decorate('store', store);
  app.decorate('storeClosed', false);
  app.addHook('onClose', async () => {
    // A connection stuck in a query that never ends (a locked table, a network that stopped answering) would
    // keep PostgreSQL's pool from ending, and the shutdown with it: the message logs are kept by then, so the
    // store gets a bounded time to close, and what is still open goes with the process.
    app.storeClosed = await within(store.close().then(() => true), STORE_CLOSE_MS, false);
    if (!app.storeClosed) {
      app.log.warn({ waitedMs: STORE_CLOSE_MS }, 'the store did not close in time (a query still running): its connections are dropped with the process');
    }
  });

  let ready = false;
  try {
    const storeTrouble = throttledWarning(app, logger, {
      message: 'the store cannot be reached: requests that need it are answered 503 STORE_UNAVAILABLE',
      summary: 'requests answered 503 STORE_UNAVAILABLE: the store still cannot be reached',
      listed: { reason: 'reasons' },
    });
    app.setErrorHandler(errorHandlerWith(storeTrouble));
    acceptJsonOnly(app);
    app.setNotFoundHandler((request, reply) => {
      reply.code(404).send(errorBody('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`));
    });

    await app.register(securityPlugin);
    await app.register(monitorPlugin);
    await app.register(credentialsPlugin);
    await app.register(usersRoutes);

    // One pooled keep-alive dispatcher for every receiver call, closed with the app.
    const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256, connect: { timeout: 10_000 } });
    app.addHook('onClose', () => dispatcher.close());
    const registry = await deployFlows(config.flowsDir, config.parameterOverrides, { securityMaterial: app.securityMaterial, dispatcher });
    for (const flow of registry.flows) {
      if (flow.status === 'deployed' && flow.warnings) app.log.warn({ flow: flow.id, endpoint: flow.endpoint, warnings: flow.warnings }, 'flow deployed with warnings');
      else if (flow.status === 'deployed') app.log.info({ flow: flow.id, endpoint: flow.endpoint }, 'flow deployed');
      else app.log.error({ flow: flow.id, error: flow.error, ...(flow.otherErrors ? { otherErrors: flow.otherErrors } : {}) }, 'flow not deployed');
    }
    app.decorate('flows', registry);
    await app.register(flowsRoutes);
    await app.register(uiRoutes);
    await app.register(senderRoutes, { registry });

    app.get('/health', async () => ({ status: 'UP' }));
    app.get('/ready', async (_request, reply) => {
      if (shutdown.closing) return reply.code(503).send({ status: 'STOPPING' });
      if (!ready) return reply.code(503).send({ status: 'STARTING' });
      return { status: 'READY' };
    });
    await app.ready();
  } catch (err) {
    // A failed start (wrong master key, broken store…) must not leave the store or its threads open.
    await app.close().catch(() => store.close());
    throw err;
  }
  ready = true;
  return app;
}

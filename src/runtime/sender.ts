import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { HttpError, errorBody } from '../errors.ts';
import { writePrebuiltLine } from '../logging/index.ts';
import type { Flow, FlowRegistry, FlowRuntime } from '../flows/registry.ts';
import { authorizeRequest, cachedAuthorization, refusalWarning } from '../security/index.ts';
import { isSensitiveHeader } from '../security/redact.ts';
import { holdsSecret, withoutSecrets } from './secrets.ts';
import type { MessageLogRecord, MessageStatus, StepTiming } from '../store/types.ts';
import { MessageFailure, malformedJsonMessage } from './errors.ts';
import { Message, markBodyFromCaller } from './message.ts';
import { runPipeline, type PipelineResult, type StepFailure } from './pipeline.ts';
import { timeOrderedUuid } from './ids.ts';
import { isoTimestamp } from './timestamps.ts';
import { jsonName, jsonTextProblem, stepTimingsJson } from './json-text.ts';
import { violationsOf } from './violations.ts';

const CORRELATION_ID = /^[\w.:@/+=-]{1,128}$/;
/** Message headers never sent back to the caller for being framing; credentials (Authorization, Cookie…) are isSensitiveHeader's. */
const NOT_REPLIED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'host']);

declare module 'fastify' {
  interface FastifyRequest {
    flow: Flow | null;
  }
}

function correlationIdOf(request: FastifyRequest): string {
  const given = request.headers['x-correlation-id'] ?? request.headers['sap_mplcorrelationid'];
  return typeof given === 'string' && CORRELATION_ID.test(given) ? given : timeOrderedUuid();
}

/**
 * What the caller gets from the final message: its headers minus credentials (by name, or by holding one of the
 * `secrets` the secure store gave the scripts) and framing, and its body; a failure (500 INVALID_REPLY) when a
 * script left something HTTP cannot carry.
 */
function replyOf(message: Message, secrets: readonly ReadonlySet<string>[] | undefined): { headers: [string, string][]; body: Buffer | string } | MessageFailure {
  if (!Number.isInteger(message.status) || message.status < 200 || message.status > 599) return invalidReply(`status ${quoted(String(message.status), secrets)} is not between 200 and 599`, secrets);
  const headers: [string, string][] = [];
  const all = message.getHeaders();
  for (const name in all) {
    if (NOT_REPLIED.has(name.toLowerCase()) || isSensitiveHeader(name)) continue;
    const value = all[name];
    if (secrets !== undefined && holdsSecret(value, secrets)) continue;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      return invalidReply(`header "${quoted(name, secrets)}" has characters HTTP does not allow`, secrets);
    }
    headers.push([name, value]);
  }
  if (!message.isJsonBody()) return { headers, body: message.getBody() };
  try {
    const body = message.getBodyAsString();
    headers.push(['content-type', 'application/json; charset=utf-8']);
    return { headers, body };
  } catch (err) {
    return invalidReply(`the body does not serialise to JSON (${(err as Error).message})`, secrets);
  }
}

/** Its text may quote what a script set (a key, a toJSON's error): the secrets the message's scripts got are taken out. */
function invalidReply(why: string, secrets: readonly ReadonlySet<string>[] | undefined): MessageFailure {
  return new MessageFailure('INVALID_REPLY', withoutSecrets(`the final message cannot be sent as an HTTP reply: ${why}`, secrets), 500);
}

/** Something a script set, for an INVALID_REPLY text: a secret it got taken out before the cut to 64 characters, not after. */
function quoted(value: string, secrets: readonly ReadonlySet<string>[] | undefined): string {
  return withoutSecrets(value, secrets).slice(0, 64);
}

const EMPTY = Buffer.alloc(0);
/** What a message refused before its pipeline ran has done: no steps, no receiver. */
const NOT_RUN: Pick<PipelineResult, 'steps' | 'receiver'> = Object.freeze({ steps: Object.freeze([]) as unknown as StepTiming[] });
/** CPI's SAP_MessageProcessingLogID, in the lower case Fastify sends header names in (lower-casing it per reply cost a string). */
const MPL_ID_HEADER = 'sap_messageprocessinglogid';

/**
 * The message log's CustomStatus from the property a script set, as text: a script may set any value (a number,
 * a boolean, an object), and a value the store cannot bind (SQLite takes no boolean or object) would fail its
 * whole batch of records, and every batch after it, for as long as the process runs.
 */
function customStatusOf(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  try {
    const json = JSON.stringify(value);
    return typeof json === 'string' ? json : null;
  } catch {
    // A cycle, a BigInt inside: no text to show.
    return null;
  }
}

function tooLarge(size: number, limit: number) {
  return errorBody('PAYLOAD_TOO_LARGE', `Body of ${size} bytes exceeds this endpoint's limit of ${limit} bytes`);
}

/** The last check before the body is read: a declared length over the flow's limit is a 413 at once. */
function admit(request: FastifyRequest, reply: FastifyReply, flow: Flow, done: (err?: Error) => void): void {
  const declared = Number(request.headers['content-length']);
  if (declared > flow.runtime!.bodyLimit) return void reply.code(413).send(tooLarge(declared, flow.runtime!.bodyLimit));
  request.flow = flow;
  done();
}

/**
 * The HTTPS sender adapter: every flow endpoint under /http/, matched case-insensitively. Checks the
 * caller (Basic auth, the flow's role), lets in only the flow's allowed headers, validates the body,
 * runs the pipeline, answers with the final message, and records the message log.
 */
export async function senderRoutes(app: FastifyInstance, options: { registry: FlowRegistry }): Promise<void> {
  const { registry } = options;
  // app.ts builds Fastify on a pino logger, so its logger is a full pino Logger.
  const logger = app.log as unknown as Logger;
  const maxLimit = Math.max(0, ...registry.flows.map((f) => f.runtime?.bodyLimit ?? 0));

  // Flow endpoints write no request lines: refused callers (a client with a wrong password, a guesser) are
  // logged here, the first at once, then a count every 10 s while they go on.
  const refusal = refusalWarning(app, { message: 'caller refused at a flow endpoint', summary: 'callers still refused at flow endpoints' }, { flow: 'flows' });
  const noteRefusal = (request: FastifyRequest, flow: Flow, statusCode: number) => refusal(request, statusCode, { flow: flow.id });

  app.decorateRequest('flow', null);
  app.removeAllContentTypeParsers();
  // Bodies are read as bytes up to the largest flow's limit (the route's bodyLimit); each flow's own
  // limit is checked on Content-Length before reading and on the bytes read for chunked bodies.
  // Registered for every type by a RegExp as well as '*' (requests without a type): Fastify caches the
  // parser a RegExp matched per Content-Type, where '*' has it parse the header again on every request.
  const asBytes = (_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: Buffer) => void) => done(null, body);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, asBytes);
  app.addContentTypeParser(/^/, { parseAs: 'buffer' }, asBytes);

  /** The message log record, metrics and log line of a finished message: FAILED when there is a failure. */
  function record(flow: Flow, message: Message, startedAt: number, run: Pick<PipelineResult, 'steps' | 'receiver'>, failure: StepFailure | undefined, user: string | undefined) {
    const { steps, receiver } = run;
    const status: MessageStatus = failure ? 'FAILED' : 'COMPLETED';
    const durationMs = Date.now() - startedAt;
    const entry: MessageLogRecord = {
      MessageGuid: message.id,
      CorrelationId: message.correlationId,
      ApplicationMessageId: message.getHeader('SAP_ApplicationID') ?? null,
      IntegrationFlowName: flow.id,
      Status: status,
      CustomStatus: customStatusOf(message.getProperty('SAP_MessageProcessingLogCustomStatus')),
      LogStart: isoTimestamp(startedAt),
      LogEnd: isoTimestamp(startedAt + durationMs),
      Sender: message.getHeader('SAP_Sender') ?? user ?? null,
      Receiver: message.getHeader('SAP_Receiver') ?? receiver ?? flow.runtime?.receiver ?? null,
      DurationMs: durationMs,
      Steps: steps,
      StepsJson: stepTimingsJson(steps),
      Error: failure ? { step: failure.step, code: failure.code, message: failure.message, ...failure.extra } : null,
    };
    app.messageLogs.add(entry);
    app.metrics.observeMessage(flow.id, status, durationMs);
    if (failure) {
      // A failure's text comes from receivers and scripts: that line goes through the log's secret scan.
      logger.warn({ messageId: message.id, correlationId: message.correlationId, flow: flow.id, status, durationMs, steps, error: entry.Error }, 'message failed');
    } else {
      // Every message writes this line: built by hand from ids, names, statuses and numbers only.
      // The ids are iflow's own UUIDs or a caller's correlation id that passed CORRELATION_ID: nothing to escape.
      const fields = `"messageId":"${message.id}","correlationId":"${message.correlationId}","flow":${jsonName(flow.id)},"status":"${status}","durationMs":${durationMs},"steps":${entry.StepsJson}`;
      writePrebuiltLine(logger, 'info', fields, 'message completed');
    }
  }

  function fail(reply: FastifyReply, flow: Flow, message: Message, startedAt: number, failure: StepFailure, run: Pick<PipelineResult, 'steps' | 'receiver'>, user: string | undefined, details?: unknown) {
    record(flow, message, startedAt, run, failure, user);
    if (failure.retryAfterSeconds !== undefined) reply.header('Retry-After', String(failure.retryAfterSeconds));
    return reply
      .code(failure.statusCode)
      .header(MPL_ID_HEADER, message.id)
      .send(errorBody(failure.code, failure.message, { messageId: message.id, ...(details === undefined ? {} : { details }) }));
  }

  /** A message from its caller's headers and body, through the flow's steps, to its reply and its record. */
  async function processMessage(request: FastifyRequest, reply: FastifyReply, flow: Flow, message: Message, raw: Buffer, startedAt: number) {
    const runtime: FlowRuntime = flow.runtime!;
    const contentType = request.headers['content-type'];
    if (contentType) message.setHeader('Content-Type', contentType);
    for (const [lower, name] of runtime.allowedHeaders) {
      const value = request.headers[lower];
      if (value !== undefined) message.setHeader(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const user = request.user?.name;
    const isJson = contentType !== undefined && /[/+]json\b/i.test(contentType);
    if (isJson || runtime.validateBody) {
      let parsed: unknown;
      const unfit = jsonTextProblem(raw);
      if (unfit) return fail(reply, flow, message, startedAt, new MessageFailure('INVALID_JSON', unfit, 400), NOT_RUN, user);
      try {
        parsed = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
      } catch (err) {
        return fail(reply, flow, message, startedAt, new MessageFailure('INVALID_JSON', malformedJsonMessage(err), 400), NOT_RUN, user);
      }
      if (runtime.validateBody && !runtime.validateBody(parsed)) {
        const details = violationsOf(runtime.validateBody.errors, runtime.validateBody.schema);
        // Verbose errors hold the parsed body: let it go now, not at the next validation.
        runtime.validateBody.errors = null;
        const summary = details.map((d) => `${d.pointer} ${d.message}${d.property === undefined ? '' : ` (${JSON.stringify(d.property)})`}`).join('; ');
        return fail(reply, flow, message, startedAt, new MessageFailure('SCHEMA_VIOLATION', `Body does not match the flow's schema: ${summary}`, 400), NOT_RUN, user, details);
      }
      if (parsed !== undefined) message.setJsonBody(parsed, raw);
      else message.setBody(raw);
    } else {
      message.setBody(raw);
      markBodyFromCaller(message);
    }

    const result = await runPipeline(runtime.steps, message, logger, flow.id);
    if (result.failure) return fail(reply, flow, message, startedAt, result.failure, result, user);

    const answer = replyOf(message, result.secretSets);
    if (answer instanceof MessageFailure) return fail(reply, flow, message, startedAt, answer, result, user);
    record(flow, message, startedAt, result, undefined, user);
    reply.code(message.status);
    for (const [name, value] of answer.headers) reply.header(name, value);
    reply.header(MPL_ID_HEADER, message.id);
    // Nothing to describe: an empty body goes without the Content-Type Fastify would give it (octet-stream).
    if (answer.body.length === 0 && !reply.hasHeader('content-type')) return reply.send();
    return reply.send(answer.body);
  }

  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/http/*',
    bodyLimit: Math.max(maxLimit, 1),
    // Callback style, not async: a caller whose login is cached is let through without a promise.
    onRequest: (request, reply, done) => {
      const query = request.url.indexOf('?');
      const path = query < 0 ? request.url : request.url.slice(0, query);
      const flow = registry.match(path);
      if (!flow) return void reply.code(404).send(errorBody('NOT_FOUND', `No deployed flow serves ${path}`));
      if (flow.method !== request.method) {
        return void reply.code(405).header('Allow', flow.method).send(errorBody('METHOD_NOT_ALLOWED', `${path} accepts ${flow.method}`));
      }
      const roles = flow.runtime!.senderRoles;
      if (cachedAuthorization(request, roles)) return admit(request, reply, flow, done);
      authorizeRequest(request, reply, roles, `flow ${flow.id}`).then(
        () => admit(request, reply, flow, done),
        (err: Error) => {
          if (err instanceof HttpError && (err.statusCode === 401 || err.statusCode === 403)) noteRefusal(request, flow, err.statusCode);
          done(err);
        },
      );
    },
    handler: async (request, reply) => {
      const startedAt = Date.now();
      const flow = request.flow!;
      const message = new Message({ id: timeOrderedUuid(startedAt), correlationId: correlationIdOf(request) });
      const raw = Buffer.isBuffer(request.body) ? request.body : EMPTY;
      if (raw.length > flow.runtime!.bodyLimit) return reply.code(413).send(tooLarge(raw.length, flow.runtime!.bodyLimit));
      app.metrics.messageStarted(flow.id);
      try {
        return await processMessage(request, reply, flow, message, raw, startedAt);
      } finally {
        app.metrics.messageFinished(flow.id);
      }
    },
  });
}

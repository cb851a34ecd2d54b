/**
 * The monitor: message processing logs (buffered writer, retention + the CPI-shaped OData V2 API) and Prometheus metrics.
 * It listens to the runtime and never steers it: the sender (runtime/sender.ts) calls `app.messageLogs.add(record)`
 * and `app.metrics.observeMessage(flow, status, durationMs)` when a message finishes, and `messageStarted(flow)` /
 * `messageFinished(flow)` around it for the in-flight gauge.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { HttpError } from '../errors.ts';
import { requireRole } from '../security/index.ts';
import type { MessageLogRecord } from '../store/types.ts';
import { MAX_TOP, checkFormatOnlyQuery, parseMessageLogEntityQuery, parseMessageLogListQuery } from './odata.ts';
import { IflowMetrics } from './metrics.ts';
import { MessageLogWriter } from './writer.ts';
import { forgetUnwritten, keepUnwritten, readUnwritten } from './unwritten.ts';
import { MessageLogRetention } from './retention.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Buffered writer of message processing logs: `add(record)` on the hot path, batched into the store. */
    messageLogs: MessageLogWriter;
    /** Prometheus metrics of this app instance (served at /metrics). */
    metrics: IflowMetrics;
  }
}

const COLLECTION = '/api/v1/MessageProcessingLogs';
const ENTITY_TYPE = 'com.sap.hci.api.MessageProcessingLog';
const ERROR_INFORMATION_TYPE = 'com.sap.hci.api.MessageProcessingLogErrorInformation';
/** CPI's sub-resources of one log: the error of a failed message, as an entity or as its text. */
const ERROR_INFORMATION = '/ErrorInformation';
const ERROR_TEXT = '/ErrorInformation/$value';

/** An ISO instant in OData V2 JSON's date form, `/Date(<ms since epoch>)/`, as CPI renders LogStart / LogEnd. */
export function odataDate(iso: string | null): string | null {
  if (iso === null) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : `/Date(${ms})/`;
}

/** The entity's key in the URL form CPI uses: `('<guid>')`, with quotes inside the key doubled. */
function entityUri(publicUrl: string, guid: string): string {
  return `${publicUrl}${COLLECTION}('${encodeURIComponent(guid.replaceAll("'", "''")).replaceAll('%27', "'")}')`;
}

/** A record as an OData V2 entry: `__metadata`, CPI's properties, then iflow's own DurationMs, Steps and Error. */
export function toODataEntry(record: MessageLogRecord, publicUrl: string, select?: string[]): Record<string, unknown> {
  const uri = entityUri(publicUrl, record.MessageGuid);
  const entry: Record<string, unknown> = {
    __metadata: { id: uri, uri, type: ENTITY_TYPE },
    MessageGuid: record.MessageGuid,
    CorrelationId: record.CorrelationId,
    ApplicationMessageId: record.ApplicationMessageId,
    IntegrationFlowName: record.IntegrationFlowName,
    Status: record.Status,
    CustomStatus: record.CustomStatus,
    LogStart: odataDate(record.LogStart),
    LogEnd: odataDate(record.LogEnd),
    Sender: record.Sender,
    Receiver: record.Receiver,
    DurationMs: record.DurationMs,
    Steps: record.Steps,
    Error: record.Error,
  };
  if (!select) return entry;
  const projected: Record<string, unknown> = { __metadata: entry.__metadata };
  for (const name of select) projected[name] = entry[name];
  return projected;
}

function sendOData(reply: FastifyReply, body: unknown) {
  return reply.header('DataServiceVersion', '2.0').type('application/json; charset=utf-8').send(body);
}

/** A plain value (`/$count`, `/$value`) as OData V2 sends it: text. */
function sendODataText(reply: FastifyReply, text: string) {
  return reply.header('DataServiceVersion', '2.0').type('text/plain; charset=utf-8').send(text);
}

/** Rebuilds the list URL with every query option kept except $top / $skip, which move on to the next page. */
function nextLink(publicUrl: string, raw: Record<string, unknown>, skip: number, top: number | undefined): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(raw)) {
    if (name === '$top' || name === '$skip') continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, String(v));
  }
  if (top !== undefined) params.set('$top', String(top));
  params.set('$skip', String(skip));
  return `${publicUrl}${COLLECTION}?${params.toString().replaceAll('%24', '$').replaceAll('+', '%20')}`;
}

async function monitor(app: FastifyInstance) {
  const writerLog = app.log.child({ component: 'message-log-writer' });
  const writer = new MessageLogWriter(app.store.messageLogs, {
    flushMs: app.config.messageLogFlushMs,
    keep: (records) => keepUnwritten(app.config.dataDir, records),
    log: writerLog,
  });
  const metrics = new IflowMetrics();
  app.decorate('messageLogs', writer);
  app.decorate('metrics', metrics);
  const retention = new MessageLogRetention(app.store.messageLogs, {
    retentionMs: app.config.messageLogRetentionMs,
    log: app.log.child({ component: 'message-log-retention' }),
  });
  app.addHook('onReady', async () => {
    retention.start();
    await writeKeptRecords();
  });

  /** Records a shutdown kept because the store was down: written now, the file removed once they are in the store. */
  async function writeKeptRecords() {
    const { records, unreadable } = await readUnwritten(app.config.dataDir);
    if (records.length === 0 && unreadable === 0) return;
    for (const record of records) writer.add(record);
    if (!(await writer.flush())) {
      writerLog.warn({ kept: records.length }, 'message processing logs kept at the last shutdown could not be written yet: they stay kept');
      return;
    }
    await forgetUnwritten(app.config.dataDir);
    writerLog.info({ written: records.length, ...(unreadable > 0 ? { unreadable } : {}) }, 'message processing logs kept at the last shutdown written');
  }
  // onClose hooks run in reverse order of registration (avvio unshifts them): app.ts adds the store's close hook
  // before it registers this plugin, so this flush runs first, while the store is still open.
  app.addHook('onClose', async () => {
    await retention.close();
    await writer.close();
  });

  const { messageLogs } = app.store;
  const monitorOnly = { onRequest: requireRole('monitor') };

  async function list(raw: Record<string, unknown>, reply: FastifyReply) {
    const { query, select, requestedTop } = parseMessageLogListQuery(raw);
    // How many records the client wants beyond this page: when more may follow, ask for one extra row to know.
    const wantsMore = requestedTop === undefined || requestedTop > MAX_TOP;
    // Reads see every record added before the request: write what is buffered first (cheap, batched anyway).
    await writer.flush();
    const page = await messageLogs.query(wantsMore ? { ...query, top: query.top + 1 } : query);
    const hasNext = wantsMore && page.results.length > query.top;
    const results = (hasNext ? page.results.slice(0, query.top) : page.results).map((record) => toODataEntry(record, app.config.publicUrl, select));
    const d: Record<string, unknown> = { results };
    if (page.count !== undefined) d.__count = String(page.count);
    if (hasNext) {
      const remaining = requestedTop === undefined ? undefined : requestedTop - query.top;
      d.__next = nextLink(app.config.publicUrl, raw, query.skip + query.top, remaining);
    }
    return sendOData(reply, { d });
  }

  async function count(raw: Record<string, unknown>, reply: FastifyReply) {
    // Every option checked as the list checks it; then only $filter counts (paging does not shorten a count).
    const { query } = parseMessageLogListQuery(raw);
    await writer.flush();
    const { count: total } = await messageLogs.query({ ...query, top: 0, skip: 0, count: true });
    return sendODataText(reply, String(total ?? 0));
  }

  /** A client that just got SAP_MessageProcessingLogID reads it at once: the writer's buffer is looked in before the store. */
  async function record(guid: string): Promise<MessageLogRecord> {
    const found = writer.find(guid) ?? (await messageLogs.get(guid));
    if (!found) throw new HttpError(404, 'NOT_FOUND', `No message processing log "${guid}"`);
    return found;
  }

  async function read(guid: string, raw: Record<string, unknown>, reply: FastifyReply) {
    const { select } = parseMessageLogEntityQuery(raw);
    return sendOData(reply, { d: toODataEntry(await record(guid), app.config.publicUrl, select) });
  }

  /**
   * CPI's `…('<guid>')/ErrorInformation` (MessageGuid, Type: iflow's error code, LastErrorModelStepId: the step)
   * and `…/ErrorInformation/$value` (the error text, as monitoring scripts fetch it); 404 for a message that did
   * not fail.
   */
  async function errorInformation(guid: string, raw: Record<string, unknown>, reply: FastifyReply, asText: boolean) {
    checkFormatOnlyQuery(raw);
    const { Error: error, Status } = await record(guid);
    if (!error) throw new HttpError(404, 'NOT_FOUND', `Message "${guid}" has no error information: its status is ${Status}`);
    if (asText) return sendODataText(reply, error.message);
    const uri = `${entityUri(app.config.publicUrl, guid)}${ERROR_INFORMATION}`;
    return sendOData(reply, {
      d: { __metadata: { id: uri, uri, type: ERROR_INFORMATION_TYPE }, MessageGuid: guid, Type: error.code, LastErrorModelStepId: error.step ?? null },
    });
  }

  app.get(COLLECTION, monitorOnly, async (request, reply) => list(request.query as Record<string, unknown>, reply));

  // `('<guid>')` (CPI's key syntax), `/<guid>`, `/$count`. find-my-way cannot express `('…')` as a parameter, so a
  // wildcard takes the rest of the path (already percent-decoded) and it is parsed here.
  app.get(`${COLLECTION}*`, monitorOnly, async (request, reply) => {
    const raw = request.query as Record<string, unknown>;
    const rest = (request.params as { '*': string })['*'];
    if (rest === '' || rest === '/') return list(raw, reply);
    if (rest === '/$count') return count(raw, reply);
    for (const [suffix, asText] of [[ERROR_TEXT, true], [ERROR_INFORMATION, false]] as const) {
      const owner = rest.endsWith(suffix) ? parseKey(rest.slice(0, -suffix.length)) : undefined;
      if (owner !== undefined) return errorInformation(owner, raw, reply, asText);
    }
    const key = parseKey(rest);
    if (key === undefined) throw new HttpError(404, 'NOT_FOUND', `No route for GET ${request.url.split('?')[0]}`);
    return read(key, raw, reply);
  });

  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()));
}

/** `('<key>')` with `''` for a quote inside, or `/<key>` (one path segment); undefined for anything else. */
export function parseKey(rest: string): string | undefined {
  if (rest.startsWith("('") && rest.endsWith("')") && rest.length >= 4) {
    const inner = rest.slice(2, -2);
    // Inside the quotes every quote must be doubled.
    let key = '';
    for (let i = 0; i < inner.length; i++) {
      if (inner[i] !== "'") {
        key += inner[i];
      } else if (inner[i + 1] === "'") {
        key += "'";
        i += 1;
      } else {
        return undefined;
      }
    }
    return key;
  }
  if (rest.startsWith('/') && rest.length > 1 && !rest.includes('/', 1)) return rest.slice(1);
  return undefined;
}

/** Message processing logs and metrics: decorates `messageLogs` and `metrics`, serves the MPL API and /metrics. */
export const monitorPlugin = fp(monitor, { name: 'iflow-monitor', dependencies: ['iflow-security'] });

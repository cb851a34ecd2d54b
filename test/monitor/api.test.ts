import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basicAuth, startIflow, startIflowWithFlows, waitFor, type RunningIflow } from '../support/iflow.ts';
import { startReceiver } from '../support/receiver.ts';
import type { MessageLogRecord } from '../../src/store/types.ts';
import { logRecord } from '../support/message-logs.ts';

interface Entry extends Record<string, unknown> {
  __metadata: { id: string; uri: string; type: string };
  MessageGuid: string;
  LogStart: string;
  LogEnd: string | null;
  Status: string;
  IntegrationFlowName: string;
}
interface ListBody {
  d: { results: Entry[]; __count?: string; __next?: string };
}
interface ErrorBody {
  error: { code: string; message: string };
}

const BASE = Date.UTC(2026, 10, 26, 10, 0, 0);
const at = (minutes: number) => new Date(BASE + minutes * 60_000).toISOString();

/**
 * 30 send-mail COMPLETED (10:00–10:29), 10 order-sync FAILED (11:00–11:09), 5 order-sync RETRY (12:00–12:04),
 * one "o'brien" flow message with a custom status (13:00): 46 in all.
 */
function dataset(): MessageLogRecord[] {
  const records: MessageLogRecord[] = [];
  for (let i = 0; i < 30; i++) records.push(logRecord({ IntegrationFlowName: 'send-mail', Status: 'COMPLETED', LogStart: at(i), DurationMs: 100 + i }));
  for (let i = 0; i < 10; i++) {
    records.push(
      logRecord({
        IntegrationFlowName: 'order-sync',
        Status: 'FAILED',
        LogStart: at(60 + i),
        Error: { step: 'Send via Graph', code: 'RECEIVER_ERROR', message: 'Graph answered 503', receiverStatus: 503, requestId: 'req-1' },
      }),
    );
  }
  for (let i = 0; i < 5; i++) records.push(logRecord({ IntegrationFlowName: 'order-sync', Status: 'RETRY', LogStart: at(120 + i), LogEnd: null }));
  records.push(logRecord({ IntegrationFlowName: "o'brien", Status: 'COMPLETED', LogStart: at(180), CustomStatus: 'Shipped', ApplicationMessageId: 'APP-1' }));
  return records;
}

/** Query string as curl users write it: spaces as %20, `$` and quotes left alone. */
function qs(options: Record<string, string>): string {
  return Object.entries(options)
    .map(([name, value]) => `${name}=${encodeURIComponent(value).replaceAll('%24', '$')}`)
    .join('&');
}

describe('the message processing log API', () => {
  let iflow: RunningIflow;
  let records: MessageLogRecord[];
  const monitorAuth = basicAuth('watcher', 'watcher-password-1');
  const senderAuth = basicAuth('client', 'client-password-1');

  /** `auth` null: no Authorization header; left out: the admin's. */
  async function get(path: string, auth: string | null = iflow.adminAuth) {
    return fetch(`${iflow.url}${path}`, { headers: auth === null ? {} : { authorization: auth } });
  }
  async function list(options: Record<string, string> = {}, auth?: string): Promise<ListBody> {
    const response = await get(`/api/v1/MessageProcessingLogs?${qs(options)}`, auth);
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as ListBody;
  }
  async function guids(filter: string, extra: Record<string, string> = {}): Promise<string[]> {
    return (await list({ $filter: filter, $orderby: 'LogStart', ...extra })).d.results.map((entry) => entry.MessageGuid);
  }
  const expected = (predicate: (record: MessageLogRecord) => boolean) =>
    records
      .filter(predicate)
      .sort((a, b) => a.LogStart.localeCompare(b.LogStart))
      .map((record) => record.MessageGuid);

  before(async () => {
    // An hour between timed flushes: whatever the API shows, it shows without the timer's help.
    iflow = await startIflow({ env: { IFLOW_MPL_FLUSH: '1h' } });
    for (const [name, password, roles] of [
      ['watcher', 'watcher-password-1', ['monitor']],
      ['client', 'client-password-1', ['ESBMessaging.send']],
    ] as const) {
      const response = await fetch(`${iflow.url}/api/v1/users`, {
        method: 'POST',
        headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
        body: JSON.stringify({ name, password, roles }),
      });
      assert.equal(response.status, 201);
    }
    records = dataset();
    for (const record of records) iflow.app.messageLogs.add(record);
  });
  after(() => iflow.close());

  test('401 without credentials, 403 for a sender-role user, 200 for monitor and admin', async () => {
    for (const path of ['/api/v1/MessageProcessingLogs', `/api/v1/MessageProcessingLogs('${records[0].MessageGuid}')`, '/api/v1/MessageProcessingLogs/$count']) {
      const anonymous = await get(path, null);
      assert.equal(anonymous.status, 401, path);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic/);
      assert.equal(((await anonymous.json()) as ErrorBody).error.code, 'UNAUTHORIZED');

      const wrongPassword = await get(path, basicAuth('watcher', 'not-the-password'));
      assert.equal(wrongPassword.status, 401, path);

      const sender = await get(path, senderAuth);
      assert.equal(sender.status, 403, path);
      assert.equal(((await sender.json()) as ErrorBody).error.code, 'FORBIDDEN');

      assert.equal((await get(path, monitorAuth)).status, 200, path);
      assert.equal((await get(path, iflow.adminAuth)).status, 200, path);
    }
  });

  test('the list is OData V2 JSON in CPI field names, newest first by default', async () => {
    const response = await get('/api/v1/MessageProcessingLogs', monitorAuth);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(response.headers.get('dataserviceversion'), '2.0');
    const body = (await response.json()) as ListBody;
    assert.equal(body.d.results.length, records.length);
    assert.equal(body.d.__count, undefined, 'no count unless asked for');
    assert.equal(body.d.__next, undefined);
    const starts = body.d.results.map((entry) => Number(/^\/Date\((\d+)\)\/$/.exec(entry.LogStart)?.[1]));
    assert.deepEqual(starts, [...starts].sort((a, b) => b - a), 'LogStart desc');

    const source = records.find((record) => record.IntegrationFlowName === "o'brien")!;
    const entry = body.d.results.find((result) => result.MessageGuid === source.MessageGuid)!;
    const uri = `${iflow.app.config.publicUrl}/api/v1/MessageProcessingLogs('${source.MessageGuid}')`;
    assert.deepEqual(entry, {
      __metadata: { id: uri, uri, type: 'com.sap.hci.api.MessageProcessingLog' },
      MessageGuid: source.MessageGuid,
      CorrelationId: source.CorrelationId,
      ApplicationMessageId: 'APP-1',
      IntegrationFlowName: "o'brien",
      Status: 'COMPLETED',
      CustomStatus: 'Shipped',
      LogStart: `/Date(${Date.parse(source.LogStart)})/`,
      LogEnd: `/Date(${Date.parse(source.LogEnd!)})/`,
      Sender: source.Sender,
      Receiver: source.Receiver,
      DurationMs: source.DurationMs,
      Steps: source.Steps,
      Error: null,
    });
    const retry = body.d.results.find((result) => result.Status === 'RETRY')!;
    assert.equal(retry.LogEnd, null);
    const failed = body.d.results.find((result) => result.Status === 'FAILED')!;
    assert.deepEqual(failed.Error, { step: 'Send via Graph', code: 'RECEIVER_ERROR', message: 'Graph answered 503', receiverStatus: 503, requestId: 'req-1' });
  });

  test('$filter on Status and IntegrationFlowName, with and / or', async () => {
    assert.deepEqual(await guids("Status eq 'FAILED'"), expected((r) => r.Status === 'FAILED'));
    assert.equal((await guids("Status eq 'FAILED'")).length, 10);
    assert.deepEqual(await guids("Status ne 'COMPLETED'"), expected((r) => r.Status !== 'COMPLETED'));
    assert.deepEqual(
      await guids("IntegrationFlowName eq 'order-sync' and Status eq 'RETRY'"),
      expected((r) => r.IntegrationFlowName === 'order-sync' && r.Status === 'RETRY'),
    );
    assert.deepEqual(await guids("Status eq 'FAILED' or Status eq 'RETRY'"), expected((r) => r.Status === 'FAILED' || r.Status === 'RETRY'));
    assert.deepEqual(await guids("IntegrationFlowName eq 'o''brien'"), expected((r) => r.IntegrationFlowName === "o'brien"));
    assert.deepEqual(await guids("CustomStatus ne null and CustomStatus eq 'Shipped'"), expected((r) => r.CustomStatus === 'Shipped'));
    assert.deepEqual(await guids('LogEnd eq null'), expected((r) => r.LogEnd === null));
    assert.deepEqual(await guids('DurationMs ge 125 and DurationMs lt 1000'), expected((r) => r.DurationMs >= 125 && r.DurationMs < 1000));
    assert.deepEqual(await guids("Status eq 'ESCALATED'"), []);
  });

  test('and binds tighter than or; parentheses regroup', async () => {
    const early = "LogStart lt datetime'2026-11-26T11:05:00'";
    assert.deepEqual(
      await guids(`Status eq 'RETRY' or Status eq 'FAILED' and ${early}`),
      expected((r) => r.Status === 'RETRY' || (r.Status === 'FAILED' && r.LogStart < at(65))),
    );
    assert.equal((await guids(`Status eq 'RETRY' or Status eq 'FAILED' and ${early}`)).length, 10);
    assert.deepEqual(
      await guids(`(Status eq 'RETRY' or Status eq 'FAILED') and ${early}`),
      expected((r) => (r.Status === 'RETRY' || r.Status === 'FAILED') && r.LogStart < at(65)),
    );
    assert.equal((await guids(`(Status eq 'RETRY' or Status eq 'FAILED') and ${early}`)).length, 5);
  });

  test('LogStart ranges with datetime literals in every accepted form', async () => {
    const want = expected((r) => r.LogStart >= at(10) && r.LogStart < at(20));
    assert.equal(want.length, 10);
    for (const [from, to] of [
      ["datetime'2026-11-26T10:10:00'", "datetime'2026-11-26T10:20:00'"],
      ["datetime'2026-11-26T10:10'", "datetime'2026-11-26T10:20'"],
      ["datetime'2026-11-26T10:10:00Z'", "datetime'2026-11-26T10:20:00.000Z'"],
      ["datetime'2026-11-26T10:10:00.000'", "datetime'2026-11-26T10:19:59.999'"],
      ["datetimeoffset'2026-11-26T11:10:00+01:00'", "datetimeoffset'2026-11-26T10:20:00Z'"],
    ]) {
      const filter = `LogStart ge ${from} and LogStart ${to.includes('59.999') ? 'le' : 'lt'} ${to}`;
      assert.deepEqual(await guids(filter), want, filter);
    }
    // A literal with milliseconds compares exactly: one record starts at 10:10:00 plus its sequence offset.
    const one = records[10];
    assert.deepEqual(await guids(`LogStart eq datetime'${one.LogStart.slice(0, -1)}'`), [one.MessageGuid]);
    assert.deepEqual(await guids(`LogStart gt datetime'2026-11-26T12:00:00' and LogEnd eq null`), expected((r) => r.LogStart > at(120) && r.LogEnd === null));
  });

  test('$top / $skip paging over a stable $orderby, with $inlinecount', async () => {
    const all = expected(() => true);
    const seen: string[] = [];
    for (let skip = 0; skip < all.length; skip += 10) {
      const page = await list({ $orderby: 'LogStart asc', $top: '10', $skip: String(skip), $inlinecount: 'allpages', $format: 'json' });
      assert.equal(page.d.__count, String(records.length), '__count is the total, as a string');
      assert.ok(page.d.results.length <= 10);
      assert.equal(page.d.__next, undefined, 'the client asked for 10 and got them: no server-driven paging');
      seen.push(...page.d.results.map((entry) => entry.MessageGuid));
    }
    assert.deepEqual(seen, all);

    const filtered = await list({ $filter: "IntegrationFlowName eq 'order-sync'", $top: '3', $skip: '2', $inlinecount: 'allpages', $orderby: 'LogStart' });
    assert.equal(filtered.d.__count, '15');
    assert.deepEqual(
      filtered.d.results.map((entry) => entry.MessageGuid),
      expected((r) => r.IntegrationFlowName === 'order-sync').slice(2, 5),
    );
    const none = await list({ $inlinecount: 'none', $top: '0' });
    assert.deepEqual(none.d, { results: [] });
    const countOnly = await list({ $inlinecount: 'allpages', $top: '0', $filter: "Status eq 'RETRY'" });
    assert.deepEqual(countOnly.d, { results: [], __count: '5' });

    const sorted = await list({ $orderby: 'IntegrationFlowName desc, LogStart desc', $top: '3' });
    assert.deepEqual(
      sorted.d.results.map((entry) => entry.IntegrationFlowName),
      ['send-mail', 'send-mail', 'send-mail'],
    );
    assert.equal(sorted.d.results[0].MessageGuid, expected((r) => r.IntegrationFlowName === 'send-mail').at(-1));
    const byFlow = await list({ $orderby: 'IntegrationFlowName, LogStart', $top: '1' });
    assert.equal(byFlow.d.results[0].IntegrationFlowName, "o'brien");
  });

  test('$select projects properties; /$count answers the filtered count as text', async () => {
    const selected = await list({ $select: 'MessageGuid,Status', $top: '1', $orderby: 'LogStart' });
    assert.deepEqual(Object.keys(selected.d.results[0]), ['__metadata', 'MessageGuid', 'Status']);
    const response = await get(`/api/v1/MessageProcessingLogs/$count?${qs({ $filter: "Status eq 'FAILED'" })}`, monitorAuth);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await response.text(), '10');
  });

  test('malformed query options are 400 INVALID_QUERY naming the problem', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ $filter: "Foo eq 'x'" }, /^\$filter: unknown field "Foo" at position 0$/],
      [{ $filter: "(Status eq 'FAILED'" }, /^\$filter: unbalanced parentheses: "\(" at position 0 is never closed at position 19$/],
      [{ $filter: "Status eq 'FAILED')" }, /unbalanced parentheses: unexpected "\)" at position 18/],
      [{ $filter: "substringof('mail', IntegrationFlowName)" }, /function substringof\(\) is not supported/],
      [{ $filter: "Status eq 'FAILED' garbage" }, /unexpected "garbage" .* at position 19/],
      [{ $filter: "Status equals 'FAILED'" }, /unknown operator "equals"/],
      [{ $filter: "LogStart gt datetime'2026-11-31T00:00:00'" }, /invalid datetime literal/],
      [{ $filter: "LogStart gt '2026-11-26'" }, /LogStart compares with a datetime/],
      [{ $filter: "Status eq 'FAILED" }, /unterminated string literal at position 10/],
      [{ $orderby: 'Nope desc' }, /^\$orderby: unknown field "Nope" at position 0$/],
      [{ $filter: "LogLevel eq 'INFO'" }, /^\$filter: field "LogLevel" is one of CPI's that iflow does not keep at position 0$/],
      [{ $orderby: 'TransactionId' }, /^\$orderby: field "TransactionId" is one of CPI's that iflow does not keep at position 0$/],
      [{ $select: 'MessageGuid,AlternateWebLink' }, /^\$select: property "AlternateWebLink" is one of CPI's that iflow does not keep at position 12$/],
      [{ $top: '-5' }, /^\$top: expected a non-negative integer/],
      [{ $skip: 'x' }, /^\$skip: expected a non-negative integer/],
      [{ $inlinecount: 'all' }, /^\$inlinecount: expected allpages or none/],
      [{ $format: 'atom' }, /^\$format: only json is supported/],
      [{ $expand: 'CustomHeaderProperties' }, /^\$expand: not supported/],
    ];
    for (const [options, message] of cases) {
      const response = await get(`/api/v1/MessageProcessingLogs?${qs(options)}`, monitorAuth);
      assert.equal(response.status, 400, JSON.stringify(options));
      const body = (await response.json()) as ErrorBody;
      assert.equal(body.error.code, 'INVALID_QUERY');
      assert.match(body.error.message, message, JSON.stringify(options));
    }
    // One escape that is not UTF-8 leaves the whole value undecoded: said so. A decoded % is just text.
    const undecoded = await get("/api/v1/MessageProcessingLogs?$filter=Status%20eq%20%27FAILED%27%20and%20%FF", monitorAuth);
    assert.equal(undecoded.status, 400);
    assert.equal(((await undecoded.json()) as ErrorBody).error.message, '$filter: holds a %-escape that is not UTF-8 (such as %FF), so it could not be decoded');
    assert.equal((await get(`/api/v1/MessageProcessingLogs?${qs({ $filter: "CorrelationId eq '100%'" })}`, monitorAuth)).status, 200);
    // Spaces sent as "+" (form encoding) read the same as %20.
    const plus = await get("/api/v1/MessageProcessingLogs?$filter=Status+eq+'RETRY'", monitorAuth);
    assert.equal(((await plus.json()) as ListBody).d.results.length, 5);
    // The same filter twice is ambiguous.
    const twice = await get("/api/v1/MessageProcessingLogs?$filter=Status%20eq%20'A'&$filter=Status%20eq%20'B'", monitorAuth);
    assert.equal(twice.status, 400);
  });

  test("a single record by ('<guid>') or /<guid>, 404 when unknown", async () => {
    const source = records.find((record) => record.Status === 'FAILED')!;
    for (const path of [
      `/api/v1/MessageProcessingLogs('${source.MessageGuid}')`,
      `/api/v1/MessageProcessingLogs(%27${source.MessageGuid}%27)`,
      `/api/v1/MessageProcessingLogs/${source.MessageGuid}`,
    ]) {
      const response = await get(path, monitorAuth);
      assert.equal(response.status, 200, path);
      const body = (await response.json()) as { d: Entry };
      assert.equal(body.d.MessageGuid, source.MessageGuid);
      assert.equal(body.d.LogStart, `/Date(${Date.parse(source.LogStart)})/`);
      assert.equal(body.d.__metadata.uri, `${iflow.app.config.publicUrl}/api/v1/MessageProcessingLogs('${source.MessageGuid}')`);
      assert.equal(body.d.Status, 'FAILED');
    }
    const selected = (await (await get(`/api/v1/MessageProcessingLogs('${source.MessageGuid}')?$select=Status`, monitorAuth)).json()) as { d: Entry };
    assert.deepEqual(Object.keys(selected.d), ['__metadata', 'Status']);

    for (const path of ["/api/v1/MessageProcessingLogs('no-such-guid')", '/api/v1/MessageProcessingLogs/no-such-guid', "/api/v1/MessageProcessingLogs('a'b')", '/api/v1/MessageProcessingLogsX']) {
      const missing = await get(path, monitorAuth);
      assert.equal(missing.status, 404, path);
      assert.equal(((await missing.json()) as ErrorBody).error.code, 'NOT_FOUND');
    }
  });

  test("a failed message's error: …('<guid>')/ErrorInformation as an entity, /ErrorInformation/$value as text; 404 for one that did not fail", async () => {
    const failed = records.find((record) => record.Status === 'FAILED' && record.Error)!;
    const completed = records.find((record) => record.Status === 'COMPLETED')!;
    for (const key of [`('${failed.MessageGuid}')`, `/${failed.MessageGuid}`]) {
      const text = await get(`/api/v1/MessageProcessingLogs${key}/ErrorInformation/$value`, monitorAuth);
      assert.equal(text.status, 200, key);
      assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await text.text(), failed.Error!.message);
    }
    const entity = await get(`/api/v1/MessageProcessingLogs('${failed.MessageGuid}')/ErrorInformation`, monitorAuth);
    assert.equal(entity.status, 200);
    const uri = `${iflow.app.config.publicUrl}/api/v1/MessageProcessingLogs('${failed.MessageGuid}')/ErrorInformation`;
    assert.deepEqual(((await entity.json()) as { d: unknown }).d, {
      __metadata: { id: uri, uri, type: 'com.sap.hci.api.MessageProcessingLogErrorInformation' },
      MessageGuid: failed.MessageGuid,
      Type: failed.Error!.code,
      LastErrorModelStepId: failed.Error!.step ?? null,
    });
    for (const path of [`('${completed.MessageGuid}')/ErrorInformation/$value`, `('${completed.MessageGuid}')/ErrorInformation`, "('no-such-guid')/ErrorInformation/$value", `('${failed.MessageGuid}')/Nothing`]) {
      const missing = await get(`/api/v1/MessageProcessingLogs${path}`, monitorAuth);
      assert.equal(missing.status, 404, path);
      const { error } = (await missing.json()) as ErrorBody;
      assert.equal(error.code, 'NOT_FOUND');
      if (path.startsWith(`('${completed.MessageGuid}')`)) assert.equal(error.message, `Message "${completed.MessageGuid}" has no error information: its status is COMPLETED`);
    }
    assert.equal((await get(`/api/v1/MessageProcessingLogs('${failed.MessageGuid}')/ErrorInformation/$value`, senderAuth)).status, 403);
  });

  test("one record's, its error's and /$count's query options are checked as the list's are: JSON only, each once, none unknown", async () => {
    const failed = records.find((record) => record.Status === 'FAILED' && record.Error)!;
    const entity = `/api/v1/MessageProcessingLogs('${failed.MessageGuid}')`;
    const cases: [string, Record<string, string>, RegExp][] = [
      [entity, { $format: 'atom' }, /^\$format: only json is supported, got "atom"$/],
      [entity, { $top: '1' }, /^\$top: unknown system query option \(supported here: \$format, \$select\)$/],
      [entity, { $expand: 'ErrorInformation' }, /^\$expand: not supported$/],
      [entity, { $select: 'Nope' }, /^\$select: unknown property "Nope" at position 0$/],
      [`${entity}/ErrorInformation`, { $select: 'Type' }, /^\$select: unknown system query option \(supported here: \$format\)$/],
      [`${entity}/ErrorInformation/$value`, { $format: 'xml' }, /^\$format: only json is supported, got "xml"$/],
    ];
    for (const [path, options, message] of cases) {
      const response = await get(`${path}?${qs(options)}`, monitorAuth);
      assert.equal(response.status, 400, `${path} ${JSON.stringify(options)}`);
      const body = (await response.json()) as ErrorBody;
      assert.equal(body.error.code, 'INVALID_QUERY');
      assert.match(body.error.message, message, `${path} ${JSON.stringify(options)}`);
    }
    for (const options of [{ $top: 'abc' }, { $filter: 'zzz' }, { $foo: '1' }] as Record<string, string>[]) {
      const counted = await get(`/api/v1/MessageProcessingLogs/$count?${qs(options)}`, monitorAuth);
      assert.equal(counted.status, 400, `$count ${JSON.stringify(options)}`);
      assert.equal(((await counted.json()) as ErrorBody).error.code, 'INVALID_QUERY');
    }
    const twice = await get(`${entity}?$select=Status&$select=Sender`, monitorAuth);
    assert.equal(twice.status, 400);
    assert.equal(((await twice.json()) as ErrorBody).error.message, '$select: given more than once');
    // As on the list: padded JSON formats are JSON, and custom options (no "$") are left alone.
    for (const path of [entity, `${entity}/ErrorInformation`, `${entity}/ErrorInformation/$value`]) {
      assert.equal((await get(`${path}?${qs({ $format: ' json ', 'sap-client': '100' })}`, monitorAuth)).status, 200, path);
    }
  });

  test('a record is readable the moment it was added, before any flush; the list shows it too', async () => {
    const fresh = logRecord({ MessageGuid: "fresh'one", IntegrationFlowName: 'fresh-flow' });
    iflow.app.messageLogs.add(fresh);
    assert.ok(iflow.app.messageLogs.pendingCount > 0, 'still buffered (the timer runs hourly here)');
    const response = await get(`/api/v1/MessageProcessingLogs('fresh''one')`, monitorAuth);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { d: Entry };
    assert.equal(body.d.MessageGuid, "fresh'one");
    assert.equal(body.d.__metadata.id, `${iflow.app.config.publicUrl}/api/v1/MessageProcessingLogs('fresh''one')`);

    const listed = await guids("IntegrationFlowName eq 'fresh-flow'");
    assert.deepEqual(listed, ["fresh'one"]);
    assert.equal(iflow.app.messageLogs.pendingCount, 0, 'the list wrote the buffer first');
    records.push(fresh);
  });
});

test('more than a page: the server pages at 1000 and links the next page with __next', async (t) => {
  const iflow = await startIflow({ env: { IFLOW_PUBLIC_URL: 'https://iflow.example.com/' } });
  t.after(() => iflow.close());
  const records = Array.from({ length: 1003 }, (_, i) => logRecord({ LogStart: at(i) }));
  for (const record of records) iflow.app.messageLogs.add(record);
  const fetchList = async (url: string) => {
    const response = await fetch(url.replace('https://iflow.example.com', iflow.url), { headers: { authorization: iflow.adminAuth } });
    assert.equal(response.status, 200);
    return (await response.json()) as ListBody;
  };

  const first = await fetchList(`${iflow.url}/api/v1/MessageProcessingLogs?$orderby=LogStart&$inlinecount=allpages&$filter=Status%20eq%20'COMPLETED'`);
  assert.equal(first.d.results.length, 1000);
  assert.equal(first.d.__count, '1003');
  assert.ok(first.d.__next?.startsWith('https://iflow.example.com/api/v1/MessageProcessingLogs?'), first.d.__next);
  const next = new URL(first.d.__next!);
  assert.equal(next.searchParams.get('$skip'), '1000');
  assert.equal(next.searchParams.get('$top'), null, 'no $top was asked for');
  assert.equal(next.searchParams.get('$filter'), "Status eq 'COMPLETED'");
  const second = await fetchList(first.d.__next!);
  assert.equal(second.d.results.length, 3);
  assert.equal(second.d.__next, undefined);
  assert.deepEqual(
    [...first.d.results, ...second.d.results].map((entry) => entry.MessageGuid),
    records.map((record) => record.MessageGuid),
  );

  const asked = await fetchList(`${iflow.url}/api/v1/MessageProcessingLogs?$orderby=LogStart&$top=1002`);
  assert.equal(asked.d.results.length, 1000);
  const askedNext = new URL(asked.d.__next!);
  assert.equal(askedNext.searchParams.get('$top'), '2', 'the rest of what the client asked for');
  assert.equal(askedNext.searchParams.get('$skip'), '1000');
  const rest = await fetchList(asked.d.__next!);
  assert.equal(rest.d.results.length, 2);
  assert.equal(rest.d.__next, undefined);

  const exact = await fetchList(`${iflow.url}/api/v1/MessageProcessingLogs?$skip=3`);
  assert.equal(exact.d.results.length, 1000);
  assert.equal(exact.d.__next, undefined, 'exactly a page left: no next link');
});

test('/metrics serves Prometheus text without auth; each app instance counts on its own', async (t) => {
  const one = await startIflow();
  const two = await startIflow();
  t.after(async () => {
    await one.close();
    await two.close();
  });
  for (const [status, durationMs] of [['COMPLETED', 1500], ['COMPLETED', 20], ['FAILED', 60_000]] as const) {
    one.app.metrics.messageStarted('send-mail');
    one.app.metrics.observeMessage('send-mail', status, durationMs);
    one.app.metrics.messageFinished('send-mail');
  }

  const response = await fetch(`${one.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  assert.match(text, /^iflow_messages_total\{flow="send-mail",status="COMPLETED"\} 2$/m);
  assert.match(text, /^iflow_messages_total\{flow="send-mail",status="FAILED"\} 1$/m);
  assert.match(text, /^iflow_message_duration_seconds_count\{flow="send-mail"\} 3$/m);
  assert.match(text, /^iflow_message_duration_seconds_bucket\{le="2.5",flow="send-mail"\} 2$/m);
  assert.match(text, /^iflow_message_duration_seconds_sum\{flow="send-mail"\} 61\.52$/m);
  assert.match(text, /^iflow_messages_in_flight\{flow="send-mail"\} 0$/m);
  assert.match(text, /^# TYPE process_cpu_user_seconds_total counter$/m, 'default process metrics');
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);

  const other = await (await fetch(`${two.url}/metrics`)).text();
  assert.match(other, /^# TYPE iflow_messages_total counter$/m);
  assert.doesNotMatch(other, /^iflow_messages_total\{/m, 'the second instance has counted nothing');
});

test('/metrics counts the messages in flight per flow: one waiting on a receiver shows until it ends, however it ends', async (t) => {
  const hanging = await startReceiver({ hang: true });
  const iflow = await startIflowWithFlows(t, {
    waits: { 'flow.yaml': `sender: { path: /http/waits }\nsteps:\n  - http: { address: "${hanging.url}/x" }\n` },
    quick: { 'flow.yaml': 'sender: { path: /http/quick }\nsteps:\n  - set: { body: ok }\n' },
  });
  const inFlight = async (flow: string) => {
    const text = await (await fetch(`${iflow.url}/metrics`)).text();
    return Number(new RegExp(`^iflow_messages_in_flight\\{flow="${flow}"\\} (-?\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  };
  const send = (path: string, body = '{}') => fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' }, body });

  assert.equal((await send('/http/quick')).status, 200);
  assert.equal((await send('/http/quick', '{not json')).status, 400);
  assert.equal(await inFlight('quick'), 0, 'finished, and refused, messages are not in flight');

  const waiting = send('/http/waits');
  await waitFor(async () => (await inFlight('waits')) === 1, { what: 'the waiting message to be counted in flight' });
  await hanging.close();
  assert.equal((await waiting).status, 502);
  assert.equal(await inFlight('waits'), 0);
});

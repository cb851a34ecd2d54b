import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageLogRetention, purgeIntervalMs } from '../../src/monitor/retention.ts';
import type { Store } from '../../src/store/types.ts';
import { startIflow, waitFor } from '../support/iflow.ts';
import { RecordingLogger, logRecord } from '../support/message-logs.ts';
import { withSqliteStore } from '../support/sqlite.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const daysAgo = (days: number, ms = 0) => new Date(NOW - days * DAY + ms).toISOString();

const allGuids = async (store: Store) => (await store.messageLogs.query({ orderBy: [{ field: 'LogStart', direction: 'asc' }], top: 1000, skip: 0, count: false })).results.map((r) => r.MessageGuid);

test('purge deletes every record older than the retention, oldest first in batches, keeps the rest and logs once', async () => {
  await withSqliteStore(async (store) => {
    const old = Array.from({ length: 7 }, (_, i) => logRecord({ LogStart: daysAgo(40, i) }));
    const edge = logRecord({ LogStart: daysAgo(30, -1) }); // one millisecond past the retention
    const kept = [logRecord({ LogStart: daysAgo(30) }), logRecord({ LogStart: daysAgo(29) }), logRecord({ LogStart: daysAgo(0) })];
    await store.messageLogs.insertMany([...kept, edge, ...old]);
    const log = new RecordingLogger();
    const retention = new MessageLogRetention(store.messageLogs, { retentionMs: 30 * DAY, batchSize: 3, now: () => NOW, log });

    assert.equal(await retention.purge(), 8);
    assert.deepEqual(await allGuids(store), kept.map((r) => r.MessageGuid), 'a record exactly as old as the retention is kept');
    assert.deepEqual(log.entries, [{ level: 'info', obj: { deleted: 8, before: daysAgo(30) }, msg: 'message processing logs past their retention deleted' }]);

    assert.equal(await retention.purge(), 0, 'nothing more to delete');
    assert.equal(log.entries.length, 1, 'a purge that deletes nothing logs nothing');
    await retention.close();
  });
});

test('a purge asked for while one runs joins it; a failing store is logged and tried again at the next run', async () => {
  await withSqliteStore(async (store) => {
    await store.messageLogs.insertMany(Array.from({ length: 5 }, (_, i) => logRecord({ LogStart: daysAgo(2, i) })));
    let failures = 1;
    const calls: number[] = [];
    const flaky = {
      async deleteOlderThan(before: string, limit: number) {
        calls.push(limit);
        if (failures-- > 0) throw new Error('SQLITE_BUSY: database is locked');
        return store.messageLogs.deleteOlderThan(before, limit);
      },
    };
    const log = new RecordingLogger();
    const retention = new MessageLogRetention(flaky, { retentionMs: DAY, now: () => NOW, log });
    assert.equal(await retention.purge(), 0);
    assert.deepEqual(log.entries, [
      {
        level: 'warn',
        obj: { deleted: 0, before: daysAgo(1), reason: 'SQLITE_BUSY: database is locked' },
        msg: 'deleting message processing logs past their retention failed: tried again at the next run',
      },
    ]);
    assert.equal((await allGuids(store)).length, 5, 'nothing deleted by the failed run');

    const [first, second] = [retention.purge(), retention.purge()];
    assert.equal(first, second, 'the second call joins the first');
    assert.equal(await first, 5);
    assert.deepEqual(calls, [1000, 1000], 'one delete per run: the batch was not full');
    assert.deepEqual(await allGuids(store), []);
    await retention.close();
  });
});

test('without a retention (0) nothing is ever deleted; the purge interval follows the retention, hourly at most', async () => {
  await withSqliteStore(async (store) => {
    await store.messageLogs.insertMany([logRecord({ LogStart: daysAgo(400) })]);
    const retention = new MessageLogRetention(store.messageLogs, { retentionMs: 0, now: () => NOW, log: new RecordingLogger() });
    retention.start();
    await retention.close();
    assert.equal((await allGuids(store)).length, 1);
  });
  assert.equal(purgeIntervalMs(30 * DAY), 3_600_000);
  assert.equal(purgeIntervalMs(DAY), 3_600_000);
  assert.equal(purgeIntervalMs(60_000), 2500);
  assert.equal(purgeIntervalMs(1000), 1000);
});

test('IFLOW_MPL_RETENTION: records past it are deleted at start, and the API no longer lists them', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-retention-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const now = Date.now();
  const old = [logRecord({ LogStart: new Date(now - 3 * DAY).toISOString() }), logRecord({ LogStart: new Date(now - 2 * DAY).toISOString() })];
  const recent = logRecord({ LogStart: new Date(now - 60_000).toISOString() });
  const first = await startIflow({ dataDir, env: { IFLOW_MPL_RETENTION: '0' } });
  await first.app.store.messageLogs.insertMany([...old, recent]);
  await first.close();

  const iflow = await startIflow({ dataDir, env: { IFLOW_MPL_RETENTION: '1d' } });
  t.after(() => iflow.close());
  const line = await waitFor(() => iflow.logs.records().find((r) => r.msg === 'message processing logs past their retention deleted'), { what: 'the purge line' });
  assert.equal(line.deleted, 2);
  assert.equal(line.component, 'message-log-retention');
  const listed = await fetch(`${iflow.url}/api/v1/MessageProcessingLogs?$inlinecount=allpages`, { headers: { authorization: iflow.adminAuth } });
  assert.equal(listed.status, 200);
  const { d } = (await listed.json()) as { d: { __count: string; results: { MessageGuid: string }[] } };
  assert.equal(d.__count, '1');
  assert.deepEqual(d.results.map((r) => r.MessageGuid), [recent.MessageGuid]);
});

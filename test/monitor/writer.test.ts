import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { MessageLogWriter } from '../../src/monitor/writer.ts';
import { within } from '../../src/deadline.ts';
import { UNWRITTEN_FILE } from '../../src/monitor/unwritten.ts';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import type { MessageLogRecord } from '../../src/store/types.ts';
import { startIflow, waitFor } from '../support/iflow.ts';
import { RecordingLogger, logRecord } from '../support/message-logs.ts';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOUR = 3_600_000;

/** An in-memory repository that can be made slow or failing, and notes how many writes overlap. */
class FakeRepository {
  readonly stored: MessageLogRecord[] = [];
  readonly batches: number[] = [];
  failuresLeft = 0;
  delayMs = 0;
  active = 0;
  maxActive = 0;

  async insertMany(records: MessageLogRecord[]) {
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs) await sleep(this.delayMs);
      if (this.failuresLeft > 0) {
        this.failuresLeft -= 1;
        throw Object.assign(new Error('SQLITE_BUSY: database is locked'), { code: 'SQLITE_BUSY' });
      }
      this.batches.push(records.length);
      this.stored.push(...records);
    } finally {
      this.active -= 1;
    }
  }
}

function setup(options: { flushMs?: number; batchSize?: number; maxPending?: number; closeAttempts?: number } = {}) {
  const repository = new FakeRepository();
  const log = new RecordingLogger();
  const writer = new MessageLogWriter(repository, { flushMs: HOUR, ...options, log });
  return { repository, log, writer };
}

test('add() only queues; the interval writes the queue in one batch', async (t) => {
  const { repository, writer } = setup({ flushMs: 20 });
  t.after(() => writer.close());
  const records = [logRecord(), logRecord(), logRecord()];
  for (const record of records) writer.add(record);
  assert.equal(repository.stored.length, 0, 'nothing is written inline');
  assert.equal(writer.pendingCount, 3);
  await waitFor(() => repository.stored.length === 3, { what: 'the timed flush' });
  assert.deepEqual(repository.batches, [3]);
  assert.deepEqual(repository.stored, records);
  assert.equal(writer.pendingCount, 0);
});

test('a full batch is written on the next turn of the event loop, not inline and not at the timer', async (t) => {
  const { repository, writer } = setup({ batchSize: 500 });
  t.after(() => writer.close());
  for (let i = 0; i < 499; i++) writer.add(logRecord());
  await nextTurn();
  await nextTurn();
  assert.equal(repository.stored.length, 0, 'below the batch size nothing is written before the timer');
  writer.add(logRecord());
  assert.equal(repository.stored.length, 0, 'the 500th add does not write inline');
  await waitFor(() => repository.stored.length === 500, { what: 'the size-triggered flush' });
  assert.deepEqual(repository.batches, [500]);
});

test('never two flushes at once; every record is written once, in order', async (t) => {
  const { repository, writer } = setup({ batchSize: 100, flushMs: 5 });
  t.after(() => writer.close());
  repository.delayMs = 3;
  const records: MessageLogRecord[] = [];
  for (let i = 0; i < 2000; i++) {
    const record = logRecord();
    records.push(record);
    writer.add(record);
    if (i % 250 === 0) void writer.flush();
    if (i % 400 === 0) await nextTurn();
  }
  await Promise.all([writer.flush(), writer.flush(), writer.flush()]);
  assert.equal(writer.pendingCount, 0);
  assert.equal(repository.maxActive, 1, 'writes never overlap');
  assert.deepEqual(
    repository.stored.map((r) => r.MessageGuid),
    records.map((r) => r.MessageGuid),
  );
  assert.ok(repository.batches.every((size) => size <= 100), 'one insertMany writes at most a batch');
});

test('a failed flush is logged with ids only, keeps the records and is retried on the next tick', async (t) => {
  const { repository, writer, log } = setup({ flushMs: 200, batchSize: 10 });
  t.after(() => writer.close());
  repository.failuresLeft = 1;
  const records = Array.from({ length: 5 }, () => logRecord({ Sender: 'secret-sender', CorrelationId: 'private-correlation' }));
  for (const record of records) writer.add(record);
  assert.equal(await writer.flush(), false);
  assert.equal(writer.pendingCount, 5, 'nothing is lost on failure');
  const failure = log.entries.find((entry) => entry.level === 'error');
  assert.ok(failure, 'the failure is logged');
  const text = JSON.stringify(failure);
  assert.match(text, /SQLITE_BUSY/);
  assert.match(text, new RegExp(records[0].MessageGuid));
  assert.doesNotMatch(text, /secret-sender|private-correlation|Send via Graph/, 'no record content in the log');

  // While the store fails, a full batch does not trigger immediate retries: the next tick retries.
  for (let i = 0; i < 20; i++) writer.add(logRecord());
  await nextTurn();
  await nextTurn();
  assert.equal(repository.stored.length, 0);
  await waitFor(() => writer.pendingCount === 0, { what: 'the retry on the next tick' });
  assert.deepEqual(
    repository.stored.slice(0, 5).map((r) => r.MessageGuid),
    records.map((r) => r.MessageGuid),
    'retried records keep their order',
  );
  assert.equal(repository.stored.length, 25);
});

test('while the store fails, at most maxPending records are kept: the oldest are dropped with a warning', async (t) => {
  const { repository, writer, log } = setup({ maxPending: 10, batchSize: 4 });
  t.after(() => writer.close());
  repository.failuresLeft = 1000;
  const records = Array.from({ length: 15 }, () => logRecord());
  for (const record of records) writer.add(record);
  assert.equal(writer.pendingCount, 10);
  assert.equal(await writer.flush(), false);
  assert.equal(writer.pendingCount, 10);
  repository.failuresLeft = 0;
  assert.equal(await writer.flush(), true);
  assert.deepEqual(
    repository.stored.map((r) => r.MessageGuid),
    records.slice(5).map((r) => r.MessageGuid),
    'the newest 10 survive',
  );
  await writer.close();
  const warning = log.entries.find((entry) => entry.level === 'warn' && /buffer full/.test(entry.msg));
  assert.ok(warning, 'dropping is reported');
  assert.equal((warning.obj as { dropped: number }).dropped, 5);
});

test('close() stops the timer and writes everything left; later adds are dropped with a warning', async () => {
  const { repository, writer, log } = setup({ batchSize: 100 });
  repository.delayMs = 2;
  for (let i = 0; i < 1234; i++) writer.add(logRecord());
  void writer.flush(); // a flush already running when close() is called
  await writer.close();
  assert.equal(repository.stored.length, 1234);
  assert.equal(new Set(repository.stored.map((r) => r.MessageGuid)).size, 1234, 'none written twice');
  assert.equal(writer.pendingCount, 0);
  assert.equal(repository.maxActive, 1);
  await writer.close(); // idempotent
  writer.add(logRecord());
  writer.add(logRecord());
  assert.equal(writer.pendingCount, 0);
  assert.equal(log.entries.filter((entry) => /after the writer closed/.test(entry.msg)).length, 1, 'warned once, not per record');
});

test('close() retries a failing store, then reports what it had to give up', async () => {
  const { repository, writer } = setup({ flushMs: 5, closeAttempts: 3 });
  for (let i = 0; i < 3; i++) writer.add(logRecord());
  repository.failuresLeft = 2;
  await writer.close();
  assert.equal(repository.stored.length, 3, 'the third attempt succeeds');

  const second = setup({ flushMs: 5, closeAttempts: 2 });
  second.repository.failuresLeft = 100;
  second.writer.add(logRecord());
  await second.writer.close();
  const lost = second.log.entries.find((entry) => entry.level === 'error' && /lost/.test(entry.msg));
  assert.ok(lost);
  assert.equal((lost.obj as { lost: number }).lost, 1);
});

test('close() is bounded: a write that never ends (a locked table, a silent network) cannot hold the shutdown; its records are kept', async () => {
  const kept: MessageLogRecord[] = [];
  const hanging = { insertMany: () => new Promise<void>(() => {}) };
  const log = new RecordingLogger();
  const writer = new MessageLogWriter(hanging, {
    flushMs: HOUR,
    batchSize: 2,
    closeTimeoutMs: 200,
    keep: async (records) => {
      kept.push(...records);
      return 'the file';
    },
    log,
  });
  const records = [logRecord(), logRecord(), logRecord()];
  for (const record of records) writer.add(record);
  void writer.flush(); // the first batch of two hangs in the store
  const startedAt = Date.now();
  const closed = await within(writer.close().then(() => 'closed'), 3000, 'still closing after 3 s');
  assert.equal(closed, 'closed');
  assert.ok(Date.now() - startedAt < 2000, `close() took ${Date.now() - startedAt} ms`);
  assert.deepEqual(
    kept.map((record) => record.MessageGuid).sort(),
    records.map((record) => record.MessageGuid).sort(),
    'the batch in flight and the one waiting are both kept',
  );
  assert.deepEqual(writer.unwrittenAtClose, { kept: 3, keptIn: 'the file', lost: 0 });
});

test("keepNow(), the stop's last resort: what is not known written is kept once, whether close() is running or done", async () => {
  const keepCalls: MessageLogRecord[][] = [];
  let releaseKeep: () => void = () => undefined;
  const hanging = { insertMany: () => new Promise<void>(() => {}) };
  const writer = new MessageLogWriter(hanging, {
    flushMs: HOUR,
    batchSize: 2,
    closeTimeoutMs: 100,
    keep: async (records) => {
      keepCalls.push(records);
      // The file is slow to write: keepNow() must wait for it, not keep again nor report before it.
      await new Promise<void>((resolve) => (releaseKeep = resolve));
      return 'the file';
    },
    log: new RecordingLogger(),
  });
  const records = [logRecord(), logRecord(), logRecord()];
  for (const record of records) writer.add(record);
  void writer.flush(); // the first batch hangs in the store
  const closing = writer.close();
  await waitFor(() => keepCalls.length === 1, { what: "close() to start keeping at its deadline" });
  let keptNow = false;
  const lastResort = writer.keepNow().then(() => (keptNow = true));
  await nextTurn();
  assert.equal(keptNow, false, 'keepNow() waits for the keeping close() started');
  releaseKeep();
  await Promise.all([closing, lastResort]);
  assert.equal(keepCalls.length, 1, 'kept once');
  assert.equal(keepCalls[0].length, 3);
  assert.deepEqual(writer.unwrittenAtClose, { kept: 3, keptIn: 'the file', lost: 0 });

  // Called with close() held up before it even started (the stop stuck in an earlier step): kept at once.
  const other = new MessageLogWriter(hanging, { flushMs: HOUR, keep: async (kept) => `file of ${kept.length}`, log: new RecordingLogger() });
  other.add(logRecord());
  void other.flush();
  other.add(logRecord());
  await other.keepNow();
  assert.deepEqual(other.unwrittenAtClose, { kept: 2, keptIn: 'file of 2', lost: 0 });
  await other.close();
  assert.deepEqual(other.unwrittenAtClose, { kept: 2, keptIn: 'file of 2', lost: 0 }, 'close() after it does nothing more');

  // close() called while keepNow() is still keeping resolves once the keeping is done, not before.
  let releaseSlow: () => void = () => undefined;
  const slow = new MessageLogWriter(hanging, {
    flushMs: HOUR,
    keep: async (kept) => {
      await new Promise<void>((resolve) => (releaseSlow = resolve));
      return `file of ${kept.length}`;
    },
    log: new RecordingLogger(),
  });
  slow.add(logRecord());
  const keeping = slow.keepNow();
  let closedEarly = false;
  const closingSlow = slow.close().then(() => (closedEarly = slow.unwrittenAtClose.kept === 0));
  await nextTurn();
  releaseSlow();
  await Promise.all([keeping, closingSlow]);
  assert.equal(closedEarly, false, 'close() resolved only after the record was kept');
  assert.deepEqual(slow.unwrittenAtClose, { kept: 1, keptIn: 'file of 1', lost: 0 });
});

test('find() sees records not yet in the store, the newest first', async (t) => {
  const { repository, writer } = setup();
  t.after(() => writer.close());
  const first = logRecord({ Status: 'PROCESSING' });
  writer.add(first);
  const second = { ...first, Status: 'COMPLETED' as const };
  writer.add(second);
  assert.equal(writer.find(first.MessageGuid), second);
  assert.equal(writer.find('nope'), undefined);
  repository.delayMs = 30;
  const flushing = writer.flush();
  await nextTurn();
  assert.equal(writer.pendingCount, 2, 'a batch being written still counts as pending');
  assert.equal(writer.find(first.MessageGuid)?.Status, 'COMPLETED', 'found while being written');
  await flushing;
  assert.equal(writer.find(first.MessageGuid), undefined);
});

test("the writer's timer does not keep the process alive", async (t) => {
  const { writer } = setup({ flushMs: 10 });
  t.after(() => writer.close());
  const timer = (writer as unknown as { timer: NodeJS.Timeout }).timer;
  assert.equal(timer.hasRef(), false);
});

test('app.close() writes every buffered record before the store closes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-monitor-'));
  try {
    // A flush interval of an hour: only the shutdown flush can write these.
    const iflow = await startIflow({ dataDir, env: { IFLOW_MPL_FLUSH: '1h' } });
    const records = Array.from({ length: 1234 }, () => logRecord());
    for (const record of records) iflow.app.messageLogs.add(record);
    await iflow.close();

    const store = await openSqliteStore(dataDir);
    try {
      const { count, results } = await store.messageLogs.query({ orderBy: [], top: 5000, skip: 0, count: true });
      assert.equal(count, 1234);
      assert.deepEqual(new Set(results.map((r) => r.MessageGuid)), new Set(records.map((r) => r.MessageGuid)));
      assert.deepEqual(await store.messageLogs.get(records[7].MessageGuid), records[7]);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a store down at shutdown: the message logs are kept in the data dir, and the next start writes them', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-monitor-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await startIflow({ dataDir, env: { IFLOW_MPL_FLUSH: '1h' } });
  const records = Array.from({ length: 5 }, () => logRecord());
  for (const record of records) first.app.messageLogs.add(record);
  // The store goes away under the running server, as a database does in an outage.
  await first.app.store.close();
  await first.close();
  assert.deepEqual(first.app.messageLogs.unwrittenAtClose, { kept: 5, keptIn: join(dataDir, UNWRITTEN_FILE), lost: 0 });
  assert.ok(first.logs.records().some((r) => r.msg === 'message processing logs could not be written before shutdown: kept for the next start' && r.kept === 5));
  assert.equal(statSync(join(dataDir, UNWRITTEN_FILE)).mode & 0o777, 0o600);

  const second = await startIflow({ dataDir });
  t.after(() => second.close());
  const written = await waitFor(() => second.logs.records().find((r) => r.msg === 'message processing logs kept at the last shutdown written'), { what: 'the kept records to be written' });
  assert.equal(written.written, 5);
  for (const record of records) assert.deepEqual(await second.app.store.messageLogs.get(record.MessageGuid), record);
  assert.equal(existsSync(join(dataDir, UNWRITTEN_FILE)), false, 'the file is gone once they are in the store');
});

test('a store that keeps failing is logged once, then once per 10 s, and its return once', async (t) => {
  const { repository, writer, log } = setup({ flushMs: 10, batchSize: 10 });
  t.after(() => writer.close());
  repository.failuresLeft = 30;
  writer.add(logRecord());
  await waitFor(() => repository.failuresLeft === 0, { what: 'thirty failed tries' });
  await waitFor(() => writer.pendingCount === 0, { what: 'the write after the store is back' });
  const failures = log.entries.filter((entry) => entry.msg === 'writing message processing logs failed; retrying on the next tick');
  assert.equal(failures.length, 1, 'thirty failures within a second are one line');
  const back = log.entries.filter((entry) => entry.msg === 'message processing logs are written again');
  assert.equal(back.length, 1);
  assert.equal((back[0].obj as { failedTries?: number }).failedTries, 30);
});

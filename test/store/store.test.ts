// One contract, two stores: every behaviour callers rely on is checked against SQLite and PostgreSQL alike.
// PostgreSQL: IFLOW_TEST_DATABASE_URL (default postgres://root@127.0.0.1:5432/test); each run works in a fresh schema
// iflow_test_<random>, dropped afterwards. An unreachable server fails the PostgreSQL half, unless IFLOW_TEST_SKIP_POSTGRES=1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { parseFilter } from '../../src/monitor/odata.ts';
import { openStore } from '../../src/store/index.ts';
import { MIGRATION_LOCK_KEY, describeDatabaseUrl, openPostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.ts';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import { logRecord as messageLog } from '../support/message-logs.ts';
import { SKIP_POSTGRES_OPTION, TEST_DATABASE_URL, TestSchemas, urlForSchema } from '../support/postgres.ts';
import { waitFor } from '../support/iflow.ts';
import type { CredentialRecord, MessageLogQuery, MessageLogRecord, Store, UserRecord } from '../../src/store/types.ts';


let sequence = 0;
const unique = (prefix: string) => `${prefix}-${++sequence}-${randomBytes(3).toString('hex')}`;

function user(name: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return { name, passwordHash: `scrypt$${name}`, roles: ['admin', 'ESBMessaging.send'], createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', ...overrides };
}

function logRecord(flow: string, n: number, overrides: Partial<MessageLogRecord> = {}): MessageLogRecord {
  return messageLog({
    MessageGuid: `${flow}-${String(n).padStart(4, '0')}`,
    CorrelationId: `corr-${flow}-${n}`,
    IntegrationFlowName: flow,
    LogStart: new Date(Date.UTC(2026, 10, 26, 10, 0, n)).toISOString(),
    ...overrides,
  });
}

function credential(name: string, overrides: Partial<CredentialRecord> = {}): CredentialRecord {
  return {
    name,
    type: 'oauth2-authorization-code',
    // Key order on purpose not alphabetical: it must survive the round trip.
    settings: { tokenUrl: 'https://login.example/token', clientId: 'client', scope: 'Mail.Send offline_access', nested: { z: 1, a: [true, null, 'x'] } },
    secrets: 'v1:encrypted-blob',
    state: { status: 'unauthorized' },
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

function query(filter: string, overrides: Partial<MessageLogQuery> = {}): MessageLogQuery {
  return { filter: parseFilter(filter), orderBy: [{ field: 'LogStart', direction: 'asc' }], top: 1000, skip: 0, count: false, ...overrides };
}

const guids = (results: MessageLogRecord[]) => results.map((r) => r.MessageGuid);

/** Registers the store contract for the stores `open` returns; `open` opens the same database each time it is called. */
function contract(name: string, open: () => Promise<Store>) {
  describe(name, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
    });

    test('users: create, duplicate, get, list, update, delete, count', async () => {
      const initial = await store.users.count();
      const names = [unique('b-user'), unique('A-user'), unique('a-user')];
      for (const n of names) assert.equal(await store.users.create(user(n)), true);
      assert.equal(await store.users.create(user(names[0], { passwordHash: 'other' })), false, 'a duplicate name is refused');
      assert.deepEqual(await store.users.get(names[0]), user(names[0]), 'the duplicate did not overwrite');
      assert.equal(await store.users.count(), initial + 3);

      const listed = (await store.users.list()).map((u) => u.name).filter((n) => names.includes(n));
      assert.deepEqual(listed, [...names].sort(), 'listed by name, byte-wise (upper case first)');

      const changed = user(names[1], { passwordHash: 'new-hash', roles: ['monitor'], updatedAt: '2026-02-02T00:00:00.000Z' });
      assert.equal(await store.users.update(changed), true);
      assert.deepEqual(await store.users.get(names[1]), { ...changed, createdAt: '2026-01-01T00:00:00.000Z' });
      assert.equal(await store.users.update(user(unique('nobody'))), false, 'updating a missing user');

      assert.equal(await store.users.delete(names[2]), true);
      assert.equal(await store.users.delete(names[2]), false);
      assert.equal(await store.users.get(names[2]), undefined);
      assert.equal(await store.users.count(), initial + 2);
    });

    test('message logs: a record that carries its Steps already serialized (StepsJson) is stored with that text', async () => {
      const flow = unique('steps-json');
      const steps = [{ name: 'Map "order"', kind: 'script', start: '2026-11-26T10:00:01.000Z', durationMs: 0.125, status: 'COMPLETED' as const }];
      // Steps left empty on purpose: what is stored must be the text, not a second serialization of Steps.
      const record = logRecord(flow, 1, { Steps: [], StepsJson: JSON.stringify(steps) });
      await store.messageLogs.insertMany([record]);
      const got = await store.messageLogs.get(record.MessageGuid);
      assert.deepEqual(got?.Steps, steps);
      assert.equal(got && 'StepsJson' in got, false, 'a record read back carries no StepsJson');
    });

    test('message logs: insertMany and get round-trip records identically, upserting by MessageGuid', async () => {
      const flow = unique('roundtrip');
      const failed = logRecord(flow, 1, {
        ApplicationMessageId: 'app-1',
        Status: 'FAILED',
        CustomStatus: 'Ünïcødé ✓ "quoted" \\ \'single\'',
        LogEnd: null,
        Sender: null,
        Receiver: null,
        DurationMs: 12.5,
        Steps: [
          { name: 'Build mail', kind: 'script', start: '2026-11-26T10:00:01.000Z', durationMs: 1.25, status: 'COMPLETED' },
          { name: 'Send via Graph', kind: 'http', start: '2026-11-26T10:00:01.002Z', durationMs: 10, status: 'FAILED' },
        ],
        Error: { step: 'Send via Graph', code: 'HTTP_RECEIVER_FAILED', message: 'Graph answered 401', receiverStatus: 401, requestId: 'req-1' },
      });
      const plain = logRecord(flow, 2, { Steps: [] });
      await store.messageLogs.insertMany([failed, plain]);
      await store.messageLogs.insertMany([]);

      const got = await store.messageLogs.get(failed.MessageGuid);
      assert.deepEqual(got, failed);
      assert.equal(JSON.stringify(got), JSON.stringify(failed), 'same key order, same values');
      assert.deepEqual(await store.messageLogs.get(plain.MessageGuid), plain);
      assert.equal(await store.messageLogs.get(unique('missing')), undefined);

      // A later write of the same guid replaces it (PROCESSING → COMPLETED), also twice in one batch: the last one wins.
      const processing = logRecord(flow, 3, { Status: 'PROCESSING', LogEnd: null });
      await store.messageLogs.insertMany([processing]);
      const retry = { ...processing, Status: 'RETRY' as const };
      const completed = { ...processing, Status: 'COMPLETED' as const, LogEnd: '2026-11-26T10:00:03.500Z', DurationMs: 500 };
      await store.messageLogs.insertMany([retry, logRecord(flow, 4), completed]);
      assert.deepEqual(await store.messageLogs.get(processing.MessageGuid), completed);
      const all = await store.messageLogs.query(query(`IntegrationFlowName eq '${flow}'`, { count: true }));
      assert.equal(all.count, 4);

      // A NUL character (say, in a script-set CustomStatus) must not fail the batch; PostgreSQL text cannot hold one, so it may read back as U+FFFD.
      const nul = logRecord(flow, 5, { CustomStatus: 'before\u0000after', Error: { code: 'X', message: 'body: \u0000' } });
      await store.messageLogs.insertMany([nul, logRecord(flow, 6)]);
      const read = await store.messageLogs.get(nul.MessageGuid);
      assert.ok(read?.CustomStatus === 'before\u0000after' || read?.CustomStatus === 'before\uFFFDafter', JSON.stringify(read?.CustomStatus));
      assert.deepEqual(read?.Error, nul.Error, 'inside Error (JSON) it survives as it is');
      assert.ok(await store.messageLogs.get(logRecord(flow, 6).MessageGuid));
    });

    test('message logs: insertMany writes large batches', async () => {
      const flow = unique('bulk');
      const records = Array.from({ length: 2500 }, (_, i) => logRecord(flow, i));
      await store.messageLogs.insertMany(records);
      const result = await store.messageLogs.query(query(`IntegrationFlowName eq '${flow}'`, { top: 1, count: true }));
      assert.equal(result.count, 2500);
      assert.deepEqual(await store.messageLogs.get(records[2499].MessageGuid), records[2499]);
    });

    test('message logs: deleteOlderThan deletes the oldest records before the instant, at most `limit` at a time', async () => {
      // Dated long before every other test's records, which share this store and must survive.
      const flow = unique('expired');
      const at = (second: number) => new Date(Date.UTC(2001, 0, 1, 0, 0, second)).toISOString();
      const records = [5, 1, 4, 2, 3, 6].map((second) => logRecord(flow, second, { LogStart: at(second) }));
      await store.messageLogs.insertMany(records);
      const left = async () => (await store.messageLogs.query(query(`IntegrationFlowName eq '${flow}'`, { orderBy: [{ field: 'LogStart', direction: 'asc' }] }))).results.map((r) => r.LogStart);
      assert.equal(await store.messageLogs.deleteOlderThan(at(5), 2), 2);
      assert.deepEqual(await left(), [at(3), at(4), at(5), at(6)], 'the two oldest went first');
      assert.equal(await store.messageLogs.deleteOlderThan(at(5), 1000), 2);
      assert.deepEqual(await left(), [at(5), at(6)], 'a record at the instant itself is kept');
      assert.equal(await store.messageLogs.deleteOlderThan(at(5), 1000), 0);
      assert.ok((await store.messageLogs.query(query(`IntegrationFlowName ne '${flow}'`, { count: true }))).count! > 0, "other tests' records are untouched");
    });

    test('message logs: $filter eq / ne with null, gt / lt / ge / le on LogStart, and / or', async () => {
      const flow = unique('filter');
      const records = [
        logRecord(flow, 1, { Status: 'COMPLETED', CustomStatus: null }),
        logRecord(flow, 2, { Status: 'FAILED', CustomStatus: 'Bounced' }),
        logRecord(flow, 3, { Status: 'COMPLETED', CustomStatus: 'Delivered', Sender: null }),
        logRecord(flow, 4, { Status: 'FAILED', CustomStatus: null }),
        logRecord(flow, 5, { Status: 'RETRY', CustomStatus: 'Delivered', DurationMs: 1000 }),
      ];
      await store.messageLogs.insertMany(records);
      const g = (...ns: number[]) => ns.map((n) => records[n - 1].MessageGuid);
      const find = async (filter: string) => guids((await store.messageLogs.query(query(`IntegrationFlowName eq '${flow}' and (${filter})`))).results);

      assert.deepEqual(await find(`Status eq 'FAILED'`), g(2, 4));
      assert.deepEqual(await find(`Status ne 'FAILED'`), g(1, 3, 5));
      assert.deepEqual(await find(`CustomStatus eq null`), g(1, 4));
      assert.deepEqual(await find(`CustomStatus ne null`), g(2, 3, 5));
      assert.deepEqual(await find(`CustomStatus ne 'Delivered'`), g(1, 2, 4), 'ne keeps the rows where the field is null');
      assert.deepEqual(await find(`Sender eq null`), g(3));
      assert.deepEqual(await find(`CustomStatus gt null`), [], 'ordering comparisons with null match nothing');

      const at = (n: number) => records[n - 1].LogStart;
      assert.deepEqual(await find(`LogStart gt datetime'${at(2)}'`), g(3, 4, 5));
      assert.deepEqual(await find(`LogStart ge datetime'${at(2)}'`), g(2, 3, 4, 5));
      assert.deepEqual(await find(`LogStart lt datetime'${at(2)}'`), g(1));
      assert.deepEqual(await find(`LogStart le datetime'${at(2)}'`), g(1, 2));
      assert.deepEqual(await find(`LogStart gt datetime'${at(1).slice(0, 19)}' and LogStart lt datetime'${at(4).slice(0, 19)}'`), g(2, 3), 'literals without milliseconds');
      assert.deepEqual(await find(`LogEnd gt datetime'${at(5)}'`), g(5));
      assert.deepEqual(await find(`DurationMs ge 100`), g(5), 'numbers compare as numbers');

      assert.deepEqual(await find(`Status eq 'FAILED' and CustomStatus eq null`), g(4));
      assert.deepEqual(await find(`Status eq 'RETRY' or CustomStatus eq 'Bounced'`), g(2, 5));
      assert.deepEqual(await find(`(Status eq 'COMPLETED' or Status eq 'RETRY') and CustomStatus eq 'Delivered'`), g(3, 5));
      assert.deepEqual(await find(`Status eq 'COMPLETED' or Status eq 'RETRY' and CustomStatus eq 'Delivered'`), g(1, 3, 5), 'and binds tighter than or');
      assert.deepEqual(await find(`Status eq 'completed'`), [], 'string comparison is case-sensitive');
    });

    test('message logs: $orderby, $top / $skip paging, count', async () => {
      const flow = unique('paging');
      const records = Array.from({ length: 7 }, (_, i) =>
        logRecord(flow, i, { DurationMs: [9, 10, 100, 9, 2, 10, 1][i], CustomStatus: [null, 'b', 'B', null, 'a', 'c', null][i] }),
      );
      await store.messageLogs.insertMany([...records].reverse());
      const inFlow = `IntegrationFlowName eq '${flow}'`;

      const newestFirst = await store.messageLogs.query(query(inFlow, { orderBy: [{ field: 'LogStart', direction: 'desc' }], top: 3, skip: 0, count: true }));
      assert.deepEqual(guids(newestFirst.results), guids([records[6], records[5], records[4]]));
      assert.equal(newestFirst.count, 7);
      const page2 = await store.messageLogs.query(query(inFlow, { orderBy: [{ field: 'LogStart', direction: 'desc' }], top: 3, skip: 3, count: true }));
      assert.deepEqual(guids(page2.results), guids([records[3], records[2], records[1]]));
      assert.equal(page2.count, 7, 'count ignores $top / $skip');
      const last = await store.messageLogs.query(query(inFlow, { orderBy: [{ field: 'LogStart', direction: 'desc' }], top: 3, skip: 6 }));
      assert.deepEqual(guids(last.results), guids([records[0]]));
      assert.equal(last.count, undefined, 'no count unless asked');
      const none = await store.messageLogs.query(query(inFlow, { top: 0, count: true }));
      assert.deepEqual(none, { results: [], count: 7 });

      const byDuration = await store.messageLogs.query(query(inFlow, { orderBy: [{ field: 'DurationMs', direction: 'asc' }] }));
      assert.deepEqual(
        byDuration.results.map((r) => r.DurationMs),
        [1, 2, 9, 9, 10, 10, 100],
        'numeric order',
      );
      // Ties are broken by MessageGuid, so paging is stable.
      assert.deepEqual(guids(byDuration.results.slice(2, 4)), guids([records[0], records[3]]));

      const byDurationDesc = await store.messageLogs.query(
        query(inFlow, { orderBy: [{ field: 'DurationMs', direction: 'desc' }, { field: 'LogStart', direction: 'desc' }] }),
      );
      assert.deepEqual(guids(byDurationDesc.results), guids([records[2], records[5], records[1], records[3], records[0], records[4], records[6]]));

      // Nulls sort as the smallest value (SQLite's rule), and text byte-wise: upper case before lower case.
      const byCustom = await store.messageLogs.query(query(inFlow, { orderBy: [{ field: 'CustomStatus', direction: 'asc' }] }));
      assert.deepEqual(
        byCustom.results.map((r) => r.CustomStatus),
        [null, null, null, 'B', 'a', 'b', 'c'],
      );
      const byCustomDesc = await store.messageLogs.query(query(inFlow, { orderBy: [{ field: 'CustomStatus', direction: 'desc' }] }));
      assert.deepEqual(
        byCustomDesc.results.map((r) => r.CustomStatus),
        ['c', 'b', 'a', 'B', null, null, null],
      );

      const filteredCount = await store.messageLogs.query(query(`${inFlow} and DurationMs lt 10`, { top: 1, count: true }));
      assert.equal(filteredCount.results.length, 1);
      assert.equal(filteredCount.count, 4);
      const unfiltered = await store.messageLogs.query({ orderBy: [], top: 1, skip: 0, count: true });
      assert.ok((unfiltered.count ?? 0) >= 7, 'no filter counts everything');
    });

    test('credentials: create, duplicate, get, list, update with version check, delete', async () => {
      const [a, b] = [unique('Cred_B'), unique('Cred_A')];
      const record = credential(a);
      assert.equal(await store.credentials.create(record), true);
      assert.equal(await store.credentials.create(credential(a, { secrets: 'other' })), false, 'a duplicate name is refused');
      const got = await store.credentials.get(a);
      assert.deepEqual(got, record);
      assert.equal(JSON.stringify(got), JSON.stringify(record), 'settings keep their key order');
      assert.equal(await store.credentials.get(unique('missing')), undefined);
      assert.equal(await store.credentials.create(credential(b, { version: 7 })), true);
      assert.equal((await store.credentials.get(b))?.version, 1, 'a new credential starts at version 1');
      const listed = (await store.credentials.list()).map((c) => c.name).filter((n) => n === a || n === b);
      assert.deepEqual(listed, [a, b].sort());

      const { version: _version, ...fields } = record;
      const first = { ...fields, state: { status: 'authorized', user: 'me@example.com', expiresAt: '2026-01-01T01:00:00.000Z' }, secrets: 'v1:new', updatedAt: '2026-01-01T00:30:00.000Z' };
      const updated = await store.credentials.update(first, 1);
      assert.deepEqual(updated, { ...first, version: 2 });
      assert.deepEqual(await store.credentials.get(a), { ...first, version: 2 });

      const stale = { ...fields, state: { status: 'reauthorization-required' }, secrets: 'v1:stale', updatedAt: '2026-01-01T00:31:00.000Z' };
      assert.equal(await store.credentials.update(stale, 1), undefined, 'a writer holding an old version loses');
      assert.deepEqual(await store.credentials.get(a), { ...first, version: 2 }, 'and changes nothing');
      assert.deepEqual(await store.credentials.update(stale, 2), { ...stale, version: 3 });
      assert.equal(await store.credentials.update({ ...fields, name: unique('missing') }, 1), undefined);

      assert.equal(await store.credentials.delete(a), true);
      assert.equal(await store.credentials.delete(a), false);
      assert.equal(await store.credentials.get(a), undefined);
    });

    test('OAuth states: put, then take once', async () => {
      const state = { state: unique('state'), credentialName: 'Microsoft365_Mail', codeVerifier: 'v1:verifier', expiresAt: '2026-01-01T00:10:00.000Z' };
      await store.credentials.putOAuthState(state);
      assert.deepEqual(await store.credentials.takeOAuthState(state.state), state);
      assert.equal(await store.credentials.takeOAuthState(state.state), undefined, 'a state can be taken once');
      assert.equal(await store.credentials.takeOAuthState(unique('never-put')), undefined);

      // Taken concurrently, exactly one caller gets it.
      const raced = { ...state, state: unique('state') };
      await store.credentials.putOAuthState(raced);
      const takes = await Promise.all([1, 2, 3].map(() => store.credentials.takeOAuthState(raced.state)));
      assert.equal(takes.filter(Boolean).length, 1);
    });

    test('withLock: same name never overlaps, different names run concurrently, errors release the lock', async () => {
      const name = unique('Locked');
      const events: string[] = [];
      const work = (id: string, ms: number) => async () => {
        events.push(`${id}:enter`);
        await sleep(ms);
        events.push(`${id}:exit`);
        return id;
      };
      const results = await Promise.all([store.credentials.withLock(name, work('1', 60)), store.credentials.withLock(name, work('2', 10)), store.credentials.withLock(name, work('3', 1))]);
      assert.deepEqual(results, ['1', '2', '3'], 'withLock answers what fn returns');
      assert.deepEqual(events, ['1:enter', '1:exit', '2:enter', '2:exit', '3:enter', '3:exit']);

      // Two names: each waits for the other to have entered, which only works when both hold their locks at once.
      let enteredA!: () => void;
      let enteredB!: () => void;
      const aIn = new Promise<void>((resolve) => (enteredA = resolve));
      const bIn = new Promise<void>((resolve) => (enteredB = resolve));
      const deadline = <T>(p: Promise<T>) => Promise.race([p, sleep(5000).then(() => assert.fail('different names were serialised'))]);
      await deadline(
        Promise.all([
          store.credentials.withLock(unique('A'), async () => {
            enteredA();
            await bIn;
          }),
          store.credentials.withLock(unique('B'), async () => {
            enteredB();
            await aIn;
          }),
        ]),
      );

      const boom = new Error('refresh failed');
      await assert.rejects(
        store.credentials.withLock(name, async () => {
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await deadline(store.credentials.withLock(name, async () => 'after')), 'after', 'the lock is free again after fn threw');
    });

    test('migrations are idempotent: opening the same database again keeps the data', async () => {
      const name = unique('kept');
      await store.users.create(user(name));
      const count = await store.users.count();
      // Closed first: one process at a time holds a SQLite data dir (data-dir-lock.test.ts).
      await store.close();
      store = await open();
      assert.deepEqual(await store.users.get(name), user(name));
      assert.equal(await store.users.count(), count);
      const again = await open().catch((err: Error) => err);
      if (again instanceof Error) {
        assert.equal(store.kind, 'sqlite', again.message);
        assert.match(again.message, /is in use by another iflow process/);
      } else {
        // PostgreSQL: several instances share one database, each migrating it at start.
        assert.equal(again.kind, 'postgres');
        assert.deepEqual(await again.users.get(name), user(name));
        await again.close();
        await again.close(); // closing twice is harmless
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// SQLite

describe('SQLite store', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-store-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  contract('contract', async () => openSqliteStore(dataDir));
});

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

describe('PostgreSQL store', SKIP_POSTGRES_OPTION, () => {
  let schemas: TestSchemas;
  let admin: pg.Client;
  let url = '';
  let schema = '';
  const createSchema = async () => (await schemas.create()).url;

  before(async () => {
    schemas = await TestSchemas.connect();
    admin = schemas.admin;
    ({ schema, url } = await schemas.create());
  });

  after(async () => {
    await schemas?.close();
  });

  const open = (options?: PostgresStoreOptions) => openPostgresStore(url, { connectionTimeoutMillis: 5000, ...options });
  const listeners = (inSchema = schema) => schemas.listeners(inSchema);

  contract('contract', () => open());

  test('the tables live in the schema named by search_path, with every migration recorded once', async () => {
    const store = await open();
    await store.close();
    const { rows } = await admin.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema]);
    assert.deepEqual(
      rows.map((r) => r.table_name),
      ['credentials', 'message_logs', 'oauth_states', 'schema_migrations', 'users'],
    );
    // Byte-wise text comparison and ordering, like SQLite, whatever the database's locale.
    const collations = await admin.query(
      `SELECT table_name || '.' || column_name AS col, collation_name FROM information_schema.columns
       WHERE table_schema = $1 AND data_type = 'text' AND table_name <> 'schema_migrations' AND (table_name = 'message_logs' OR column_name IN ('name', 'state'))`,
      [schema],
    );
    assert.ok(collations.rows.length >= 12);
    for (const row of collations.rows) assert.equal(row.collation_name, 'C', row.col);
    const migrations = await admin.query(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
    assert.deepEqual(
      migrations.rows.map((r) => r.version),
      POSTGRES_MIGRATIONS.map((m) => m.version),
    );
  });

  test('instances starting together migrate one at a time', async () => {
    const fresh = await createSchema();
    const stores = await Promise.all([1, 2, 3, 4].map(() => openPostgresStore(fresh, { max: 2 })));
    try {
      for (const store of stores) assert.equal(await store.users.count(), 0);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('openStore opens PostgreSQL when databaseUrl is set', async () => {
    const store = await openStore({ dataDir: join(tmpdir(), 'iflow-unused'), databaseUrl: url });
    try {
      assert.equal(store.kind, 'postgres');
    } finally {
      await store.close();
    }
  });

  test('users.watch: each changed user is announced by name to the watchers of every other instance, not to other schemas', async () => {
    const other = await schemas.create();
    const [one, two, elsewhere] = await Promise.all([open(), open(), openPostgresStore(other.url, { connectionTimeoutMillis: 5000 })]);
    try {
      const heard: (string | undefined)[] = [];
      let heardElsewhere = 0;
      two.users.watch({ changed: (name) => heard.push(name) });
      elsewhere.users.watch({ changed: () => heardElsewhere++ });
      await waitFor(async () => (await listeners()).length === 1 && (await listeners(other.schema)).length === 1, { what: 'both listening connections' });
      await waitFor(() => heard.length === 1 && heardElsewhere === 1, { what: 'each watcher to be told once its connection listens' });
      assert.deepEqual(heard, [undefined], 'without a name: anything may have changed before it listened');
      heard.length = 0;
      heardElsewhere = 0;

      const name = unique('watched');
      const second = unique('watched');
      assert.equal(await one.users.create(user(name)), true);
      assert.equal(await one.users.create(user(second)), true);
      await one.users.update(user(name, { roles: ['monitor'] }));
      // By hand in SQL, one statement on two rows: each is announced.
      await admin.query(`UPDATE ${schema}.users SET roles = '["admin"]' WHERE name IN ($1, $2)`, [name, second]);
      await admin.query(`DELETE FROM ${schema}.users WHERE name = $1`, [name]);
      await waitFor(() => heard.length === 6, { what: 'six announcements' });
      assert.deepEqual(heard.slice(0, 3), [name, second, name]);
      assert.deepEqual(new Set(heard.slice(3, 5)), new Set([name, second]));
      assert.equal(heard[5], name);
      // One more round trip, so anything announced to the other schema's watcher would have arrived by now.
      const fence = unique('fence');
      await one.users.create(user(fence));
      await waitFor(() => heard.length === 7, { what: 'the last creation to be announced' });
      assert.equal(heard[6], fence);
      assert.equal(heardElsewhere, 0, 'changes in one schema are not announced to another');
    } finally {
      await Promise.all([one.close(), two.close(), elsewhere.close()]);
    }
  });

  test('users.watch: a truncation is announced without a name', async () => {
    // A schema of its own: the truncation must not take other tests' users.
    const fresh = await schemas.create();
    const [one, two] = await Promise.all([1, 2].map(() => openPostgresStore(fresh.url, { connectionTimeoutMillis: 5000 })));
    try {
      const heard: (string | undefined)[] = [];
      two.users.watch({ changed: (name) => heard.push(name) });
      await waitFor(async () => (await listeners(fresh.schema)).length === 1, { what: 'the listening connection' });
      await waitFor(() => heard.length === 1, { what: 'the watcher to be told once the connection listens' });
      heard.length = 0;
      const name = unique('truncated');
      assert.equal(await one.users.create(user(name)), true);
      await schemas.admin.query(`TRUNCATE ${fresh.schema}.users`);
      await waitFor(() => heard.length === 2, { what: 'two announcements' });
      assert.deepEqual(heard, [name, undefined]);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('credentials.watch: each changed credential is announced by name (both of a renamed one), a truncation without', async () => {
    // A schema of its own: the truncation below must not take other tests' credentials.
    const fresh = await schemas.create();
    const [one, two] = await Promise.all([1, 2].map(() => openPostgresStore(fresh.url, { connectionTimeoutMillis: 5000 })));
    try {
      const names: (string | undefined)[] = [];
      let users = 0;
      two.credentials.watch({ changed: (name) => names.push(name) });
      two.users.watch({ changed: () => users++ });
      await waitFor(async () => (await listeners(fresh.schema)).length === 1, { what: 'one listening connection for both' });
      await waitFor(() => names.length === 1 && users === 1, { what: 'both watchers to be told once the connection listens' });
      assert.deepEqual(names, [undefined], 'without a name: anything may have changed before it listened');
      names.length = 0;
      users = 0;

      const name = unique('Announced');
      const other = unique('Other');
      const renamed = unique('Renamed');
      assert.equal(await one.credentials.create(credential(name)), true);
      assert.equal(await one.credentials.create(credential(other)), true);
      const stored = (await one.credentials.get(name))!;
      assert.ok(await one.credentials.update({ ...stored, state: { status: 'authorized' } }, stored.version));
      assert.equal(await one.credentials.delete(name), true);
      await schemas.admin.query(`UPDATE ${fresh.schema}.credentials SET name = $1 WHERE name = $2`, [renamed, other]);
      await schemas.admin.query(`TRUNCATE ${fresh.schema}.credentials`);
      await waitFor(() => names.length === 7, { what: 'seven announcements' });
      assert.deepEqual(names, [name, other, name, name, other, renamed, undefined]);
      assert.equal(users, 0, 'not told to the users watchers');
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('users.watch: a lost listening connection is reopened, and the watchers are told changes may have been missed', async () => {
    const [one, two] = await Promise.all([open(), open()]);
    try {
      let changed = 0;
      let recovered = 0;
      const troubles: string[] = [];
      two.users.watch({ changed: () => changed++, trouble: (err) => troubles.push(err.message), recovered: () => recovered++ });
      const onlyListener = async () => {
        const pids = await listeners();
        return pids.length === 1 ? pids : undefined;
      };
      const [pid] = await waitFor(onlyListener, { what: 'the listening connection' });
      await waitFor(() => changed === 1, { what: 'the watcher to be told once the connection listens' });
      assert.equal(recovered, 0, 'the first connection is no recovery');
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(() => troubles.length >= 1, { what: 'the loss to be reported' });
      await waitFor(() => changed === 2, { what: 'the watcher to be told once the connection is back' });
      assert.equal(recovered, 1, 'told once that it hears again');
      const [again] = await waitFor(onlyListener, { what: 'a new listening connection' });
      assert.notEqual(again, pid);
      assert.equal(await one.users.create(user(unique('after'))), true);
      await waitFor(() => changed === 3, { what: 'changes to be heard again' });
      assert.ok(troubles.every((message) => !message.includes('postgres://')), troubles.join('; '));
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('withLock across instances: two stores (two pools) never hold the same credential at once', async () => {
    const [one, two] = await Promise.all([open(), open()]);
    try {
      const name = unique('Shared');
      let holders = 0;
      let most = 0;
      const events: string[] = [];
      const work = (id: string) => async () => {
        holders += 1;
        most = Math.max(most, holders);
        events.push(`${id}:enter`);
        await sleep(40);
        events.push(`${id}:exit`);
        holders -= 1;
      };
      await Promise.all([0, 1, 2].flatMap((i) => [one.credentials.withLock(name, work(`one${i}`)), two.credentials.withLock(name, work(`two${i}`))]));
      assert.equal(most, 1, `overlapping holders: ${events.join(' ')}`);
      for (let i = 0; i < events.length; i += 2) {
        assert.equal(events[i].replace(':enter', ''), events[i + 1].replace(':exit', ''), `enter/exit pairs: ${events.join(' ')}`);
      }
      assert.ok(events.some((e) => e.startsWith('one')) && events.some((e) => e.startsWith('two')));

      // The lock is a real server-side advisory lock while fn runs, and gone afterwards, also when fn threw.
      const held = async () => {
        const { rows } = await admin.query(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint = $1 AND objid::bigint = (hashtext($2 || ':' || $3)::bigint & 4294967295)`,
          [0x69666c77, schema, name],
        );
        return rows[0].n as number;
      };
      await one.credentials.withLock(name, async () => assert.equal(await held(), 1, 'held while fn runs'));
      assert.equal(await held(), 0, 'released after fn');
      await assert.rejects(
        one.credentials.withLock(name, async () => {
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await held(), 0, 'released after fn threw');
      const started = Date.now();
      await two.credentials.withLock(name, async () => undefined);
      assert.ok(Date.now() - started < 1000, 'the other instance gets it at once');
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  test('withLock: waiting for another instance is bounded by lockTimeoutMillis', async () => {
    const [holder, waiter] = await Promise.all([open(), open({ lockTimeoutMillis: 200 })]);
    try {
      const name = unique('Stuck');
      let release!: () => void;
      const entered = new Promise<void>((resolve) => {
        void holder.credentials.withLock(name, () => {
          resolve();
          return new Promise<void>((done) => (release = done));
        });
      });
      await entered;
      const started = Date.now();
      await assert.rejects(
        waiter.credentials.withLock(name, async () => assert.fail('must not run')),
        (err: Error) => /Timed out after 200ms waiting for the lock on credential "Stuck-/.test(err.message),
      );
      assert.ok(Date.now() - started < 3000);
      release();
      assert.equal(await waiter.credentials.withLock(name, async () => 'mine'), 'mine', 'the waiter works once the lock is free');
    } finally {
      await Promise.all([holder.close(), waiter.close()]);
    }
  });

  /** How long a statement of `store` (application_name iflow) has waited for a lock, in ms, by the server's clock; 0 when none waits. */
  const lockWaitMs = async (queryLike: string) => {
    const { rows } = await admin.query(
      `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start) * 1000), 0)::int AS ms FROM pg_stat_activity
       WHERE application_name = 'iflow' AND wait_event_type = 'Lock' AND state = 'active' AND query LIKE $1`,
      [`%${queryLike}%`],
    );
    return rows[0].ms as number;
  };

  test('withLock: waiting for another instance longer than the statement timeout is not cut short by it', async () => {
    // 200 ms statement timeout: the client's own bound is 400 ms; the lock wait may take lockTimeoutMillis (default 120 s).
    const [holder, waiter] = await Promise.all([open(), open({ statementTimeoutMillis: 200 })]);
    // Released however this test ends: a lock still held would keep the holder's store from closing.
    let release = () => {};
    try {
      const name = unique('Long');
      const entered = new Promise<void>((resolve) => {
        void holder.credentials.withLock(name, () => {
          resolve();
          return new Promise<void>((done) => (release = done));
        });
      });
      await entered;
      const waited = waiter.credentials.withLock(name, async () => 'mine');
      const outcome = waited.then(
        () => 'got it early',
        (err: Error) => err.message,
      );
      let early: string | undefined;
      void outcome.then((value) => (early = value));
      // Past both bounds, by the server's clock (or the waiter failed first).
      await waitFor(async () => early !== undefined || (await lockWaitMs('pg_advisory_lock')) > 800, { what: 'the waiter to wait past its bounds' });
      assert.equal(early, undefined, `the waiter stopped waiting: ${early}`);
      release();
      assert.equal(await waited, 'mine');
    } finally {
      release();
      await Promise.all([holder.close(), waiter.close()]);
    }
  });

  test('migrations wait for another instance migrating, and run, however long past the statement timeout', async () => {
    const fresh = await schemas.create();
    // Another instance migrating (any schema of the database: the key is the database's).
    const other = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
      let settled: string | undefined;
      const opening = openPostgresStore(fresh.url, { statementTimeoutMillis: 200 });
      opening.then(
        () => (settled = 'opened'),
        (err: Error) => (settled = err.message),
      );
      try {
        await waitFor(async () => settled !== undefined || (await lockWaitMs('pg_advisory_xact_lock')) > 800, { what: 'the migration to wait past its bounds' });
        assert.equal(settled, undefined, `the start stopped waiting: ${settled}`);
      } finally {
        await other.query('COMMIT');
      }
      const store = await opening;
      try {
        assert.equal(await store.users.count(), 0, 'migrated');
      } finally {
        await store.close();
      }
    } finally {
      await other.end();
    }
  });

  test('withLock on many names with a small pool leaves connections for the work inside', async () => {
    const store = await open({ max: 2, connectionTimeoutMillis: 2000 });
    try {
      const names = Array.from({ length: 6 }, () => unique('Many'));
      for (const name of names) await store.credentials.create(credential(name));
      const got = await Promise.all(
        names.map((name) =>
          store.credentials.withLock(name, async () => {
            await sleep(20);
            return (await store.credentials.get(name))?.name;
          }),
        ),
      );
      assert.deepEqual(got, names);
      // Failing holders give their connections back.
      for (const name of names) await assert.rejects(store.credentials.withLock(name, () => Promise.reject(new Error('no'))), /no/);
      assert.equal((await store.credentials.get(names[0]))?.name, names[0]);
    } finally {
      await store.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Opening a database that is not there

describe('PostgreSQL store: connection failures', () => {
  for (const host of ['127.0.0.1', 'localhost']) {
    test(`names the server, never the password (${host})`, async () => {
      const password = 'pa55-s3cret-do-not-print';
      const err: Error = await openStore({ dataDir: join(tmpdir(), 'iflow-unused'), databaseUrl: `postgres://iflow:${password}@${host}:1/iflowdb` }).then(
        () => assert.fail('opened a store on port 1'),
        (e: Error) => e,
      );
      assert.match(err.message, new RegExp(`^Cannot open the PostgreSQL store at iflow@${host}:1/iflowdb: .+`));
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(!err.message.includes(password), err.message);
      assert.ok(!String(err.stack).includes(password));
    });
  }

  test('a search_path schema that does not exist is named, with the fix', SKIP_POSTGRES_OPTION, async () => {
    const schema = `iflow_test_missing_${randomBytes(4).toString('hex')}`;
    const err: Error = await openPostgresStore(urlForSchema(schema)).then(
      () => assert.fail('opened a store in a schema that does not exist'),
      (e: Error) => e,
    );
    assert.match(err.message, new RegExp(`no schema has been selected to create in \\(the search_path schema "${schema}" does not exist: create it with CREATE SCHEMA`));
    // A list names its first schema (where the tables would go), a quoted name without its quotes.
    const quoted = await openPostgresStore(urlForSchema(`"${schema}_Q",${schema}_other`)).then(
      () => assert.fail('opened a store in schemas that do not exist'),
      (e: Error) => e,
    );
    assert.match(quoted.message, new RegExp(`\\(the search_path schema "${schema}_Q" does not exist`));
  });

  test('a malformed percent-escape in the URL (not refused by config here): the store names the server, not "URI malformed", never the password', async () => {
    for (const [databaseUrl, described] of [
      ['postgres://postgres:s3%cretPW@127.0.0.1:1/x', 'postgres@127.0.0.1:1/x'],
      ['postgres://us%ZZer:s3%cretPW@127.0.0.1:1/d%ZZb', 'us%ZZer@127.0.0.1:1/d%ZZb'],
    ]) {
      const err: Error = await openPostgresStore(databaseUrl, { connectionTimeoutMillis: 5000 }).then(
        () => assert.fail('opened a store on port 1'),
        (e: Error) => e,
      );
      assert.match(err.message, new RegExp(`^Cannot open the PostgreSQL store at ${described}: .*ECONNREFUSED`));
      assert.ok(!err.message.includes('s3%cretPW'), err.message);
    }
  });

  test('describeDatabaseUrl shows no password, and copes with unparsable URLs', () => {
    assert.equal(describeDatabaseUrl('postgres://u:secret@db.example:6543/iflow?sslmode=require'), 'u@db.example:6543/iflow');
    assert.equal(describeDatabaseUrl('postgres://us%ZZer:s3%cret@db.example/d%ZZb'), 'us%ZZer@db.example:5432/d%ZZb', 'malformed escapes shown as written');
    assert.equal(describeDatabaseUrl('postgresql:///iflow?host=/var/run/postgresql'), '/var/run/postgresql:5432/iflow');
    assert.doesNotMatch(describeDatabaseUrl('not a url secret'), /secret/);
  });
});

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SKIP_POSTGRES_OPTION, TestSchemas, schemaBehindProxy } from './support/postgres.ts';
import { writeFlows } from './support/flows.ts';
import { startIflowProcess } from './support/process.ts';
import { basicAuth, waitFor } from './support/iflow.ts';
import { UNWRITTEN_FILE } from '../src/monitor/unwritten.ts';

/** Starts `iflow start` on a port another server holds; returns how it ended (bounded: killed after 30 s). */
async function startOnTakenPort(env: Record<string, string>) {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-port-'));
  try {
    return spawnSync(process.execPath, ['bin/iflow.js', 'start'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, IFLOW_DATA_DIR: dataDir, IFLOW_ADMIN_PASSWORD: 'admin-test-password-1', HOST: '127.0.0.1', PORT: String((holder.address() as AddressInfo).port), ...env },
    });
  } finally {
    holder.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('a taken port: iflow says it cannot start, and exits 1', async () => {
  const started = await startOnTakenPort({});
  assert.equal(started.signal, null, 'it exited by itself');
  assert.equal(started.status, 1);
  assert.match(started.stderr, /^iflow: cannot start: listen EADDRINUSE/m);
});

test('a taken port with PostgreSQL: the store is closed and iflow exits 1, not holding its connections', SKIP_POSTGRES_OPTION, async (t) => {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { url } = await schemas.create();
  const started = await startOnTakenPort({ DATABASE_URL: url });
  assert.equal(started.signal, null, 'it exited by itself, not killed at the time limit');
  assert.equal(started.status, 1);
  assert.match(started.stderr, /^iflow: cannot start: listen EADDRINUSE/m);
});

/**
 * An `iflow start` process on a fresh PostgreSQL schema reached through a proxy that can be cut, holding one
 * message processing log unwritten (flushed hourly only), and its data dir.
 */
async function runningWithOneLogPending(t: TestContext) {
  const { url: proxied, proxy } = await schemaBehindProxy(t);
  const flows = writeFlows({ echo: { 'flow.yaml': 'sender: { path: /http/echo }\nsteps:\n  - set: { body: "${body}" }\n' } });
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-stop-'));
  t.after(() => {
    flows.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const iflow = await startIflowProcess(t, {
    DATABASE_URL: proxied,
    IFLOW_FLOWS_DIR: flows.dir,
    IFLOW_DATA_DIR: dataDir,
    IFLOW_ADMIN_PASSWORD: 'stop-test-password-1',
    IFLOW_MPL_FLUSH: '1h',
  });
  const sent = await fetch(`${iflow.url}/http/echo`, { method: 'POST', headers: { authorization: basicAuth('admin', 'stop-test-password-1') }, body: 'hello' });
  assert.equal(sent.status, 200);
  return { iflow, proxy, dataDir, messageId: sent.headers.get('sap_messageprocessinglogid') };
}

test('stopped during a database outage: the message log is kept in the data dir, the last line says so, exit 0', SKIP_POSTGRES_OPTION, async (t) => {
  const { iflow, proxy, dataDir, messageId } = await runningWithOneLogPending(t);
  proxy.cut();
  assert.equal(await iflow.stop(), 0, iflow.stderr);
  const last = iflow.lines().at(-1);
  assert.match(String(last?.msg), /^stopped: .*message logs kept for the next start/);
  assert.equal(last?.kept, 1);
  assert.ok(readFileSync(join(dataDir, UNWRITTEN_FILE), 'utf8').includes(String(messageId)));
});

test('stopped while the database stops answering (connections open, nothing passes): the shutdown is bounded and the message log kept', SKIP_POSTGRES_OPTION, async (t) => {
  const { iflow, proxy, dataDir, messageId } = await runningWithOneLogPending(t);
  proxy.stall();
  // Docker's grace period is 10 s before SIGKILL, which would lose the message log without a word.
  let bound: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    bound = setTimeout(resolve, 15_000, 'still stopping after 15 s');
  });
  const ended = await Promise.race([iflow.stop(), late]).finally(() => clearTimeout(bound));
  assert.equal(ended, 0, iflow.stderr + iflow.stdout.slice(-2000));
  const last = iflow.lines().at(-1);
  assert.match(String(last?.msg), /^stopped: messages in flight finished, message logs kept for the next start .*store left open \(it did not close in time\)$/);
  assert.ok(readFileSync(join(dataDir, UNWRITTEN_FILE), 'utf8').includes(String(messageId)));
});

test('stopped while a request waits on a database that stopped answering: within 8 s the message log is kept and the process goes, exit 1', SKIP_POSTGRES_OPTION, async (t) => {
  const { iflow, proxy, dataDir, messageId } = await runningWithOneLogPending(t);
  proxy.stall();
  // A request the store holds up (its query waits up to the client's query timeout, 12 s): the HTTP server's close
  // waits for it, and so would the stop, past Docker's 10 s.
  const held = proxy.held;
  const waiting = fetch(`${iflow.url}/api/v1/users`, { headers: { authorization: basicAuth('admin', 'stop-test-password-1') } }).catch(() => undefined);
  await waitFor(() => proxy.held > held || undefined, { what: 'the request\'s query held by the stalled database' });
  const stopping = performance.now();
  assert.equal(await iflow.stop(), 1, iflow.stderr);
  assert.ok(performance.now() - stopping < 9500, 'within Docker\'s grace period');
  const last = iflow.lines().at(-1);
  assert.match(String(last?.msg), /^stopped: stopping did not finish within 8000 ms .*message logs kept for the next start .*store left open$/);
  assert.ok(readFileSync(join(dataDir, UNWRITTEN_FILE), 'utf8').includes(String(messageId)));
  await waiting;
});

test('stopped during a database outage with nowhere to keep the message log: the last line says LOST, exit 1', SKIP_POSTGRES_OPTION, async (t) => {
  const { iflow, proxy, dataDir } = await runningWithOneLogPending(t);
  // A folder where the file would go: it cannot be written.
  mkdirSync(join(dataDir, UNWRITTEN_FILE));
  proxy.cut();
  assert.equal(await iflow.stop(), 1, iflow.stderr);
  const last = iflow.lines().at(-1);
  assert.match(String(last?.msg), /^stopped: .*message logs LOST/);
  assert.equal(last?.lost, 1);
  assert.equal(last?.level, 50);
});

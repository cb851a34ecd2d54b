import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SKIP_POSTGRES_OPTION, TestSchemas } from './support/postgres.ts';

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

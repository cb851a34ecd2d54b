import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basicAuth } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';

test('iflow start writes its JSON lines to stdout, none lost at shutdown', async (t) => {
  const flows = writeFlows({ echo: { 'flow.yaml': 'sender: { path: /http/echo }\nsteps:\n  - name: Stamp\n    set:\n      headers:\n        X-Stamped: "yes"\n' } });
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-stdout-'));
  t.after(() => {
    flows.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const child = spawn(process.execPath, ['bin/iflow.js', 'start'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', IFLOW_FLOWS_DIR: flows.dir, IFLOW_DATA_DIR: dataDir, IFLOW_ADMIN_USER: 'admin', IFLOW_ADMIN_PASSWORD: 'stdout-test-password', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  t.after(() => clearTimeout(killer));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));

  // The listening line reaches stdout by the destination's periodic flush, long before 16 KB pile up.
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (!(url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1])) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `iflow did not report listening: ${stderr}${stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const response = await fetch(`${url}/http/echo`, { method: 'POST', headers: { authorization: basicAuth('admin', 'stdout-test-password') }, body: 'hello' });
  assert.equal(response.status, 200);
  const messageId = response.headers.get('sap_messageprocessinglogid');
  assert.ok(messageId);

  // Stopped right away: the lines still buffered are written by a periodic flush or at exit (the exit
  // flush on its own is tested in fd-destination.test.ts).
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const completed = lines.find((line) => line.messageId === messageId);
  assert.ok(completed, `no line for ${messageId} in:\n${stdout}`);
  assert.equal(completed.msg, 'message completed');
  assert.equal(completed.flow, 'echo');
  assert.deepEqual(
    (completed.steps as { name: string }[]).map((step) => step.name),
    ['Stamp'],
  );
  assert.ok(
    lines.some((line) => line.msg === 'shutting down'),
    'the shutdown line is written too',
  );
  const stopped = lines.at(-1);
  assert.match(String(stopped?.msg), /^stopped: messages in flight finished, message logs written, store closed$/, 'the last line says iflow stopped cleanly');
  assert.equal(typeof stopped?.durationMs, 'number');
  assert.ok(!stdout.includes('stdout-test-password'), 'the password never reaches stdout');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basicAuth } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';
import { startIflowProcess } from '../support/process.ts';

test('iflow start writes its JSON lines to stdout, none lost at shutdown', async (t) => {
  const flows = writeFlows({ echo: { 'flow.yaml': 'sender: { path: /http/echo }\nsteps:\n  - name: Stamp\n    set:\n      headers:\n        X-Stamped: "yes"\n' } });
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-stdout-'));
  t.after(() => {
    flows.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const iflow = await startIflowProcess(t, { IFLOW_FLOWS_DIR: flows.dir, IFLOW_DATA_DIR: dataDir, IFLOW_ADMIN_USER: 'admin', IFLOW_ADMIN_PASSWORD: 'stdout-test-password' });
  const response = await fetch(`${iflow.url}/http/echo`, { method: 'POST', headers: { authorization: basicAuth('admin', 'stdout-test-password') }, body: 'hello' });
  assert.equal(response.status, 200);
  const messageId = response.headers.get('sap_messageprocessinglogid');
  assert.ok(messageId);

  // Stopped right away: the lines still buffered are written by a periodic flush or at exit (the exit
  // flush on its own is tested in fd-destination.test.ts).
  assert.equal(await iflow.stop(), 0);
  const lines = iflow.lines();
  const completed = lines.find((line) => line.messageId === messageId);
  assert.ok(completed, `no line for ${messageId} in:\n${iflow.stdout}`);
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
  assert.ok(!iflow.stdout.includes('stdout-test-password'), 'the password never reaches stdout');
});

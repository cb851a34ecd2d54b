import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startIflow } from './support/iflow.ts';

test('health and readiness answer once the server is up', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  const health = await fetch(`${iflow.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'UP' });
  const ready = await fetch(`${iflow.url}/ready`);
  assert.equal(ready.status, 200);
});

test('an unknown path is a JSON 404', async (t) => {
  const iflow = await startIflow();
  t.after(() => iflow.close());
  const response = await fetch(`${iflow.url}/nope`);
  assert.equal(response.status, 404);
  const body = (await response.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'NOT_FOUND');
});

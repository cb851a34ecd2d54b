import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentSecrets, holdsSecret } from '../../src/runtime/secrets.ts';

const HOUR = 60 * 60 * 1000;

test('handed-out secrets are kept for a while after their last hand-out, the newest first to stay', () => {
  const recent = new RecentSecrets(3, 24 * HOUR);
  recent.add('token-renewed-at-0', 0);
  recent.add('password-every-message', 0);
  recent.add('token-renewed-at-1h', 1 * HOUR);
  recent.add('password-every-message', 20 * HOUR);
  assert.deepEqual([...recent.secrets], ['token-renewed-at-0', 'token-renewed-at-1h', 'password-every-message'], 'a secret handed out again moves last');

  // A day after its last hand-out a secret is no longer looked for; one handed out since stays.
  recent.prune(24 * HOUR + 1);
  assert.deepEqual([...recent.secrets], ['token-renewed-at-1h', 'password-every-message']);
  assert.equal(holdsSecret('Bearer token-renewed-at-0', [recent.secrets]), false);
  assert.equal(holdsSecret('Bearer token-renewed-at-1h', [recent.secrets]), true);

  // Past the count, the least recently handed out goes, never the one just handed out.
  recent.add('token-2', 25 * HOUR);
  recent.add('token-3', 25 * HOUR);
  assert.deepEqual([...recent.secrets], ['password-every-message', 'token-2', 'token-3']);
  recent.add('token-4', 26 * HOUR);
  assert.deepEqual([...recent.secrets], ['token-2', 'token-3', 'token-4']);

  recent.prune(100 * HOUR);
  assert.equal(recent.secrets.size, 0);
});

test('a thousand renewals keep the newest thousand, not an emptied set', () => {
  const recent = new RecentSecrets(1000, 24 * HOUR);
  for (let i = 0; i < 1500; i++) recent.add(`token-${i}`, i);
  assert.equal(recent.secrets.size, 1000);
  assert.ok(recent.secrets.has('token-1499') && recent.secrets.has('token-500') && !recent.secrets.has('token-499'));
});

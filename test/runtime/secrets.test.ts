import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentSecrets, holdsSecret } from '../../src/runtime/secrets.ts';

const HOUR = 60 * 60 * 1000;

test('handed-out tokens are guarded until they are well expired; passwords until newer secrets push them out', () => {
  const recent = new RecentSecrets(3, 0);
  recent.add('password-kept-in-a-module-variable', Infinity, 0);
  recent.add('token-one', 2 * HOUR, 0);
  recent.add('token-two', 3 * HOUR, 1 * HOUR);
  assert.deepEqual([...recent.secrets], ['password-kept-in-a-module-variable', 'token-one', 'token-two']);

  // Past a token's time it is no longer looked for; the password stays, however old.
  recent.prune(2 * HOUR);
  assert.deepEqual([...recent.secrets], ['password-kept-in-a-module-variable', 'token-two']);
  assert.equal(holdsSecret('Bearer token-one', [recent.secrets]), false);
  assert.equal(holdsSecret('Bearer token-two', [recent.secrets]), true);
  recent.prune(1000 * HOUR);
  assert.deepEqual([...recent.secrets], ['password-kept-in-a-module-variable']);

  // Past the count, the least recently handed out goes; one handed out again moves last.
  recent.add('token-three', 2000 * HOUR, 1000 * HOUR);
  recent.add('password-kept-in-a-module-variable', Infinity, 1000 * HOUR);
  recent.add('token-four', 2000 * HOUR, 1000 * HOUR);
  recent.add('token-five', 2000 * HOUR, 1000 * HOUR);
  assert.deepEqual([...recent.secrets], ['password-kept-in-a-module-variable', 'token-four', 'token-five']);
});

test('a thousand renewals keep the newest thousand, not an emptied set; pruning looks at most once a minute', () => {
  const recent = new RecentSecrets(1000);
  for (let i = 0; i < 1500; i++) recent.add(`token-${i}`, 10 * HOUR, i);
  assert.equal(recent.secrets.size, 1000);
  assert.ok(recent.secrets.has('token-1499') && recent.secrets.has('token-500') && !recent.secrets.has('token-499'));
  recent.prune(10 * HOUR + 1);
  assert.equal(recent.secrets.size, 0, 'all expired');
  recent.add('token-late', 20 * HOUR, 10 * HOUR + 2);
  recent.prune(20 * HOUR + 1000);
  assert.equal(recent.secrets.size, 0);
  recent.add('token-soon', 20 * HOUR + 2000, 20 * HOUR + 1001);
  recent.prune(20 * HOUR + 3000);
  assert.equal(recent.secrets.size, 1, 'not looked through again within the minute');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThrottledWarning } from '../../src/logging/throttled-warning.ts';
import { waitFor } from '../support/iflow.ts';

function recorder() {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  return { lines, log: { warn: (fields: object, msg: string) => void lines.push({ msg, fields: fields as Record<string, unknown> }) } };
}

test('the first occurrence is logged at once, the rest of an interval as one summary; a quiet interval ends the summaries', async () => {
  const { lines, log } = recorder();
  const warning = new ThrottledWarning(log, { message: 'refused', summary: 'still refused', intervalMs: 30, listed: { user: 'users', flow: 'flows' } });

  warning.note({ user: 'ada', flow: 'a', statusCode: 401 });
  assert.deepEqual(lines, [{ msg: 'refused', fields: { user: 'ada', flow: 'a', statusCode: 401 } }]);
  for (let i = 0; i < 8; i++) warning.note({ user: `user${i % 7}`, flow: 'b' });
  assert.equal(lines.length, 1, 'counted, not logged, within the interval');

  await waitFor(() => lines.length === 2, { what: 'the summary' });
  assert.deepEqual(lines[1], { msg: 'still refused', fields: { count: 8, seconds: 0.03, users: ['user0', 'user1', 'user2', 'user3', 'user4'], flows: ['b'] } });
  assert.ok(warning.summarizing, 'a summary starts the next interval');

  await waitFor(() => !warning.summarizing, { what: 'a quiet interval to end the summaries' });
  assert.equal(lines.length, 2, 'a quiet interval logs nothing');
  warning.note({ user: 'bob' });
  assert.deepEqual(lines[2], { msg: 'refused', fields: { user: 'bob' } }, 'after a quiet interval the next one is logged at once again');
  warning.close();
});

test('close() logs the count not yet reported and stops the timer', () => {
  const { lines, log } = recorder();
  const warning = new ThrottledWarning(log, { message: 'busy', summary: 'still busy', intervalMs: 60_000 });
  warning.note({ running: 16 });
  warning.note({ running: 16 });
  warning.note({ running: 16 });
  warning.close();
  assert.deepEqual(lines, [
    { msg: 'busy', fields: { running: 16 } },
    { msg: 'still busy', fields: { count: 2, seconds: 60 } },
  ]);
  assert.equal(warning.summarizing, false);
  warning.close();
  assert.equal(lines.length, 2, 'closing twice logs nothing more');
});

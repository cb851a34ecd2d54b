import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { within } from '../src/deadline.ts';

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(resolve, ms, value));

test('within(): the work when it comes first, `late` when the bound does; a bound past the timer range is none', async () => {
  assert.equal(await within(after(5, 'work'), 1000, 'late'), 'work');
  assert.equal(await within(after(1000, 'work'), 5, 'late'), 'late');
  assert.equal(await within(Promise.resolve('ready'), 0, 'late'), 'ready', 'work already done beats a 0 ms bound');
  // Infinity or 2^31 ms and more: Node would fire such a timer at once.
  assert.equal(await within(after(20, 'work'), Infinity, 'late'), 'work');
  assert.equal(await within(after(20, 'work'), 2 ** 31, 'late'), 'work');
  // A rejection after the bound leaves no unhandled rejection (the runner would fail the file).
  let rejected: () => void = () => undefined;
  const rejection = new Promise<void>((resolve) => (rejected = resolve));
  const failing = new Promise((_resolve, reject) =>
    setTimeout(() => {
      reject(new Error('too late to matter'));
      rejected();
    }, 20),
  );
  assert.equal(await within(failing, 1, 'late'), 'late');
  await rejection;
  await nextTurn(); // unhandled rejections are reported after the microtasks of the turn they happen in
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTimestamp } from '../../src/runtime/timestamps.ts';

test('isoTimestamp gives what Date#toISOString gives, across seconds, days and odd inputs', () => {
  const base = Date.UTC(2026, 10, 26, 23, 59, 59, 998);
  const samples = [0, 1, 999, 1000, -1, -1001, base, base + 1, base + 2, base + 1002, base + 0.7, Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
  for (let i = 0; i < 2000; i++) samples.push(base + i * 37);
  for (const ms of samples) assert.equal(isoTimestamp(ms), new Date(ms).toISOString(), `at ${ms}`);
  // Years past 9999 have a longer form: still right.
  assert.equal(isoTimestamp(Date.UTC(10000, 0, 1, 0, 0, 0, 5)), new Date(Date.UTC(10000, 0, 1, 0, 0, 0, 5)).toISOString());
});

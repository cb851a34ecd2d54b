import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonName, millisJson, nestsDeeperThan, stepTimingsJson } from '../../src/runtime/json-text.ts';
import type { StepTiming } from '../../src/store/types.ts';

test('millisJson writes the number JSON.stringify writes for a duration rounded to the microsecond', () => {
  const durations = [0, 0.001, 0.01, 0.1, 0.5, 0.123, 1, 1.247, 2.1, 10, 12.5, 999.999, 1000, 1234.567, 3_600_000, 86_400_000.001];
  for (let us = 0; us < 5000; us += 7) durations.push(Math.round(us * 1.37) / 1000);
  for (const ms of durations) assert.equal(millisJson(ms), JSON.stringify(ms), `${ms}`);
  assert.equal(millisJson(-0.5), '-0.5');
  assert.equal(millisJson(Number.NaN), 'null');
});

test('jsonName is JSON.stringify, also for names that need escaping', () => {
  for (const name of ['Map order', 'quote " and \\ backslash', 'line\nbreak', 'Ünïcødé ✓', '']) {
    assert.equal(jsonName(name), JSON.stringify(name));
    assert.equal(jsonName(name), JSON.stringify(name), 'cached');
  }
});

test('stepTimingsJson is JSON.stringify(steps)', () => {
  const steps: StepTiming[] = [
    { name: 'Map "order"', kind: 'script', start: '2026-11-26T10:00:01.000Z', durationMs: 0.125, status: 'COMPLETED' },
    { name: 'Send', kind: 'http', start: '2026-11-26T10:00:01.002Z', durationMs: 1234.5, status: 'FAILED' },
    { name: 'Retried', kind: 'http', start: '2026-11-26T10:00:02.002Z', durationMs: 20.5, status: 'COMPLETED', attempts: 3 },
  ];
  assert.equal(stepTimingsJson(steps), JSON.stringify(steps));
  assert.equal(stepTimingsJson([]), '[]');
});

test('nestsDeeperThan counts brackets outside strings only, escaped quotes and backslashes included', () => {
  const deep = (n: number, inner = '') => Buffer.from(`${'['.repeat(n)}${inner}${']'.repeat(n)}`);
  assert.equal(nestsDeeperThan(Buffer.from('[[[[[['), 3), false, 'text of twice the limit or less is not scanned: as JSON it cannot nest deeper');
  assert.equal(nestsDeeperThan(deep(11, ' '.repeat(20)), 10), true);
  assert.equal(nestsDeeperThan(deep(10, ' '.repeat(20)), 10), false, 'the limit itself is allowed');
  // Brackets in strings, after an escaped quote, or after an escaped backslash, do not count.
  assert.equal(nestsDeeperThan(Buffer.from(JSON.stringify({ a: '['.repeat(50), b: 'x\\"[[[[[[[[[[[[', c: 'y\\\\' }) + '['.repeat(3)), 10), false);
  assert.equal(nestsDeeperThan(Buffer.from(`["a\\\\"${'['.repeat(11)}0${']'.repeat(11)}]`), 10), true, 'the string ends at a quote after an escaped backslash');
  assert.equal(nestsDeeperThan(Buffer.from(`["unterminated ${'['.repeat(40)}`), 10), false);
});

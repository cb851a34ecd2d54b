import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryAfterMs } from '../../src/config/duration.ts';

test('Retry-After: seconds or an HTTP-date (a past one is 0), the first of repeated headers; anything else undefined', () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  assert.equal(retryAfterMs('120', now), 120_000);
  assert.equal(retryAfterMs('0', now), 0);
  assert.equal(retryAfterMs('Fri, 27 Nov 2026 12:00:30 GMT', now), 30_000);
  assert.equal(retryAfterMs('Fri, 27 Nov 2026 11:59:00 GMT', now), 0, 'a date already past: no wait');
  assert.equal(retryAfterMs(['5', '60'], now), 5000);
  assert.equal(retryAfterMs(undefined, now), undefined);
  assert.equal(retryAfterMs('-5', now), undefined, 'a negative delay is unreadable, not a date');
  assert.equal(retryAfterMs('soon', now), undefined);
  // The obsolete forms, read as GMT whatever the machine's zone.
  assert.equal(retryAfterMs('Friday, 27-Nov-26 12:00:30 GMT', now), 30_000);
  assert.equal(retryAfterMs('Fri Nov 27 12:00:30 2026', now), 30_000);
  assert.equal(retryAfterMs('Fri Nov  7 12:00:30 2026', now), 0);
  // Nothing Date.parse would guess at, nor an empty header (the caller's own delay applies).
  for (const value of ['', '  ', '0x10', '1e3', '1.5', 'x 2030', 'May 5', '2026-11-27T12:00:30Z']) assert.equal(retryAfterMs(value, now), undefined, JSON.stringify(value));
});

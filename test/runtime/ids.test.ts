import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timeOrderedUuid } from '../../src/runtime/ids.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('timeOrderedUuid: RFC 9562 version 7 with the time in its first 48 bits, sorting by time, unique', () => {
  const at = Date.UTC(2026, 10, 26, 6, 26, 17, 259);
  const id = timeOrderedUuid(at);
  assert.match(id, UUID_V7);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);

  const ids: string[] = [];
  for (let i = 0; i < 5000; i++) ids.push(timeOrderedUuid(at + Math.floor(i / 10)));
  for (const each of ids) assert.match(each, UUID_V7);
  assert.equal(new Set(ids).size, ids.length, 'no repeats across pool refills');
  for (let i = 10; i < ids.length; i += 10) assert.ok(ids[i - 10] < ids[i], 'a later millisecond sorts later');
  // The largest 48-bit times still fit.
  assert.equal(parseInt(timeOrderedUuid(2 ** 48 - 1).replace(/-/g, '').slice(0, 12), 16), 2 ** 48 - 1);
});

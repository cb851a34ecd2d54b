import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
/** Random bytes drawn in blocks, ten per id: one randomFillSync call serves hundreds of ids. */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;
const RANDOM_BYTES_PER_ID = 10;

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74 random bits. Message ids
 * made later sort later, so the message log's primary key and correlation index grow at their end:
 * with random (v4) ids every insert lands on a random page, and on SQLite inserts cost two to three
 * times as much once the table outgrows the page cache.
 */
export function timeOrderedUuid(now: number = Date.now()): string {
  if (used + RANDOM_BYTES_PER_ID > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const r = used;
  used += RANDOM_BYTES_PER_ID;
  const high = Math.floor(now / 0x10000); // the top 32 of the 48 time bits
  const low = now % 0x10000;
  return (
    HEX[(high >>> 24) & 0xff] +
    HEX[(high >>> 16) & 0xff] +
    HEX[(high >>> 8) & 0xff] +
    HEX[high & 0xff] +
    '-' +
    HEX[low >>> 8] +
    HEX[low & 0xff] +
    '-' +
    HEX[0x70 | (pool[r] & 0x0f)] +
    HEX[pool[r + 1]] +
    '-' +
    HEX[0x80 | (pool[r + 2] & 0x3f)] +
    HEX[pool[r + 3]] +
    '-' +
    HEX[pool[r + 4]] +
    HEX[pool[r + 5]] +
    HEX[pool[r + 6]] +
    HEX[pool[r + 7]] +
    HEX[pool[r + 8]] +
    HEX[pool[r + 9]]
  );
}

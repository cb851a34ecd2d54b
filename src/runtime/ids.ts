import { randomFillSync } from 'node:crypto';

/** The two ASCII hex digits of each byte value, at 2 × byte. */
const HEX_DIGITS = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0')).join(''), 'latin1');
/** Random bytes drawn in blocks, ten per id: one randomFillSync call serves hundreds of ids. */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;
const RANDOM_BYTES_PER_ID = 10;
/** The id is spelled into this buffer and read out as one flat string (no chain of 20 concatenations). */
const text = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

function hex(at: number, byte: number): void {
  text[at] = HEX_DIGITS[2 * byte];
  text[at + 1] = HEX_DIGITS[2 * byte + 1];
}

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
  hex(0, (high >>> 24) & 0xff);
  hex(2, (high >>> 16) & 0xff);
  hex(4, (high >>> 8) & 0xff);
  hex(6, high & 0xff);
  hex(9, low >>> 8);
  hex(11, low & 0xff);
  hex(14, 0x70 | (pool[r] & 0x0f));
  hex(16, pool[r + 1]);
  hex(19, 0x80 | (pool[r + 2] & 0x3f));
  hex(21, pool[r + 3]);
  for (let i = 0; i < 6; i++) hex(24 + 2 * i, pool[r + 4 + i]);
  return text.toString('latin1');
}

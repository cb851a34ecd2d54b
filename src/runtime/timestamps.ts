/**
 * ISO 8601 UTC timestamps for message logs, several per message: `new Date(ms).toISOString()`
 * costs over a microsecond each, so the part up to the second is built once per second and reused.
 */
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** The same string as `new Date(epochMs).toISOString()` for any time from 1970 to 9999. */
export function isoTimestamp(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    // "2026-11-26T06:26:17." from "2026-11-26T06:26:17.000Z"
    const iso = new Date(second * 1000).toISOString();
    if (iso.length !== 24) return new Date(epochMs).toISOString(); // years outside 0000-9999: no cache
    cachedPrefix = iso.slice(0, 20);
    cachedSecond = second;
  }
  const millis = Math.floor(epochMs) - second * 1000;
  return `${cachedPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

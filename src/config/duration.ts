const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "30s", "2m", "1h", "1d" or a bare number of milliseconds → milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`invalid duration ${value}`);
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!match) throw new Error(`invalid duration "${value}" (use a number with ms, s, m, h or d)`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms']);
}

/** HTTP-date's three forms (RFC 9110 §5.6.7), all in GMT: IMF-fixdate, obsolete RFC 850, and asctime (no zone written). */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * An HTTP `Retry-After` header (RFC 9110 §10.2.3) → milliseconds to wait: delay-seconds (digits only) or an
 * HTTP-date (a date past is 0); the first of repeated headers; undefined when absent or anything else (so the
 * caller's own delay applies; Date.parse alone reads "-5", "0x10" or "May 5" as something).
 */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = IMF_FIXDATE.test(value) || RFC850_DATE.test(value) ? Date.parse(value) : ASCTIME_DATE.test(value) ? Date.parse(`${value} GMT`) : NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

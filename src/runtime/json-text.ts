import { isUtf8 } from 'node:buffer';
import type { StepTiming } from '../store/types.ts';

/** JSON text of the names flows are made of (flow ids, step names and kinds): a bounded set, so cached. */
const NAMES = new Map<string, string>();
const MAX_NAMES = 10_000;

/** `JSON.stringify(name)`, cached for the names of deployed flows and steps. */
export function jsonName(name: string): string {
  let json = NAMES.get(name);
  if (json === undefined) {
    json = JSON.stringify(name);
    if (NAMES.size < MAX_NAMES) NAMES.set(name, json);
  }
  return json;
}

/** ".001" … ".999" without trailing zeros, "" for 0: the fraction of a duration in whole microseconds. */
const FRACTIONS = Array.from({ length: 1000 }, (_, us) => (us === 0 ? '' : `.${String(us).padStart(3, '0')}`.replace(/0+$/, '')));

/**
 * A duration in milliseconds, rounded to the microsecond, as JSON: the number JSON.stringify writes for
 * it, from integer arithmetic (turning an arbitrary double into text was the dearest part of a line).
 */
export function millisJson(ms: number): string {
  if (!Number.isFinite(ms)) return 'null';
  const us = Math.round(ms * 1000);
  if (us < 0) return JSON.stringify(us / 1000);
  return `${Math.floor(us / 1000)}${FRACTIONS[us % 1000]}`;
}

/** `JSON.stringify(steps)` for a message's step timings, written out field by field. */
export function stepTimingsJson(steps: readonly StepTiming[]): string {
  let json = '[';
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    json += `${i === 0 ? '' : ','}{"name":${jsonName(step.name)},"kind":${jsonName(step.kind)},"start":${JSON.stringify(step.start)},"durationMs":${millisJson(step.durationMs)},"status":"${step.status}"${step.attempts === undefined ? '' : `,"attempts":${step.attempts}`}}`;
  }
  return `${json}]`;
}

/** How deep a caller's JSON may nest: far beyond real payloads, well below what recursion (JSONata, structuredClone) survives. */
export const MAX_JSON_DEPTH = 1000;

const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Does JSON text nest arrays and objects deeper than `limit`? Read byte by byte, strings skipped. Text shorter
 * than twice the limit cannot, so the usual small body costs nothing.
 */
export function nestsDeeperThan(json: Buffer, limit = MAX_JSON_DEPTH): boolean {
  if (json.length <= 2 * limit) return false;
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const byte = json[i];
    if (byte === QUOTE) {
      // To the closing quote (found natively, so long strings such as base64 cost little): one that an even
      // number of backslashes, or none, comes before.
      for (;;) {
        i = json.indexOf(QUOTE, i + 1);
        if (i < 0) return false;
        let backslashes = 0;
        while (json[i - 1 - backslashes] === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
      }
    } else if (byte === OPEN_BRACKET || byte === OPEN_BRACE) {
      if (++depth > limit) return true;
    } else if (byte === CLOSE_BRACKET || byte === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/**
 * What makes a caller's bytes unfit to be read as JSON before they are parsed, if anything: not UTF-8 (RFC 8259;
 * other bytes would be read as U+FFFD, the text silently changed), or nested deeper than `maxDepth`.
 */
export function jsonTextProblem(bytes: Buffer, maxDepth = MAX_JSON_DEPTH): string | undefined {
  if (!isUtf8(bytes)) return 'Malformed JSON body: it is not UTF-8';
  if (nestsDeeperThan(bytes, maxDepth)) return `Malformed JSON body: it nests deeper than ${maxDepth} levels`;
  return undefined;
}

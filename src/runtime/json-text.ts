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

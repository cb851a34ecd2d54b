import type { ErrorObject } from 'ajv';
import { unknownPropertyOf } from '../errors.ts';

/** One way a body breaks a flow's JSON Schema, as SCHEMA_VIOLATION's `details` list it. */
export interface Violation {
  pointer: string;
  message: string;
  /** The unknown property, for additionalProperties. */
  property?: string;
}

/** Errors that only sum up others: "must match a schema in anyOf", "must match "else" schema". */
const SUMMARIES = new Set(['anyOf', 'oneOf', 'if']);

/** ajv's message, naming the allowed values where ajv only says "constant" or "the allowed values". */
function messageOf(error: ErrorObject): string {
  if (error.keyword === 'const') return `must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`;
  if (error.keyword === 'enum') return `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((value) => JSON.stringify(value)).join(', ')}`;
  return error.message ?? 'is invalid';
}

function violation(error: ErrorObject, message = messageOf(error)): Violation {
  const property = unknownPropertyOf(error);
  return { pointer: error.instancePath || '/', message, ...(property === undefined ? {} : { property }) };
}

/**
 * ajv's errors (allErrors) as violations a caller can act on. The alternatives of a union at one place become one
 * violation ("must have required property 'text', or must have required property 'html'") instead of separate
 * demands of which only one need be met; the summaries are left out when other errors say what is wrong; a
 * violation repeated (the same place and message) is listed once. Alternatives are told by their schema path,
 * which ajv gives from the root of a $ref'd schema: one inlined from elsewhere may stay listed on its own.
 */
export function violationsOf(errors: readonly ErrorObject[] | null | undefined): Violation[] {
  const all = errors ?? [];
  const specific = all.filter((error) => !SUMMARIES.has(error.keyword));
  // A summary stays when nothing more specific explains it (a oneOf that matched two branches has nothing below
  // it): explained means a specific error at its place or inside it (schema paths restart at a $ref, so the place
  // in the body is what tells).
  const explained = (summary: ErrorObject) =>
    specific.some((error) => error.instancePath === summary.instancePath || error.instancePath.startsWith(`${summary.instancePath}/`));
  const unexplained = all.filter((error) => SUMMARIES.has(error.keyword) && !explained(error));
  // The first alternative of each union stands for all of them, in ajv's order; the others are dropped.
  const standsFor = new Map<ErrorObject, string>();
  const merged = new Set<ErrorObject>();
  for (const union of all) {
    if (union.keyword !== 'anyOf' && union.keyword !== 'oneOf') continue;
    const alternatives = specific.filter(
      (error) => !merged.has(error) && error.instancePath === union.instancePath && error.schemaPath.startsWith(`${union.schemaPath}/`) && error.keyword !== 'additionalProperties',
    );
    if (alternatives.length < 2) continue;
    // Errors of one branch must all be fixed ("and"); any one branch will do ("or").
    const byBranch = new Map<string, Set<string>>();
    for (const error of alternatives) {
      const branch = error.schemaPath.slice(union.schemaPath.length + 1).split('/')[0];
      let messages = byBranch.get(branch);
      if (!messages) byBranch.set(branch, (messages = new Set()));
      messages.add(messageOf(error));
    }
    if (byBranch.size < 2) continue;
    for (const error of alternatives) merged.add(error);
    standsFor.set(alternatives[0], [...new Set([...byBranch.values()].map((messages) => [...messages].join(' and ')))].join(', or '));
  }
  const result: Violation[] = [];
  for (const error of all) {
    const message = standsFor.get(error);
    if (message !== undefined) result.push(violation(error, message));
    else if (specific.includes(error) ? !merged.has(error) : unexplained.includes(error)) result.push(violation(error));
  }
  return dedupe(result);
}

function dedupe(list: Violation[]): Violation[] {
  const seen = new Set<string>();
  return list.filter((item) => {
    const key = `${item.pointer}\u0000${item.message}\u0000${item.property ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

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

/** A local `$ref` ("#/definitions/x", "#/$defs/x") resolved in the root schema; undefined for any other. */
function resolveRef(ref: string, root: unknown): unknown {
  if (!ref.startsWith('#')) return undefined;
  let node = root;
  for (const segment of ref.slice(1).split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/** Keywords that apply a subschema to the same value (so errors they cause stay at the same place in the body). */
const IN_PLACE_LISTS = ['allOf', 'anyOf', 'oneOf'] as const;
const IN_PLACE_ONES = ['not', 'if', 'then', 'else'] as const;

/** Whether `target` is `node` or a schema `node` applies to the same value, through local $refs and in-place keywords. */
function reaches(node: unknown, target: unknown, root: unknown, seen: Set<unknown>): boolean {
  if (node === target) return true;
  if (node === null || typeof node !== 'object' || seen.has(node)) return false;
  seen.add(node);
  const schema = node as Record<string, unknown>;
  if (typeof schema.$ref === 'string' && reaches(resolveRef(schema.$ref, root), target, root, seen)) return true;
  for (const key of IN_PLACE_LISTS) {
    const list = schema[key];
    if (Array.isArray(list) && list.some((branch) => reaches(branch, target, root, seen))) return true;
  }
  return IN_PLACE_ONES.some((key) => reaches(schema[key], target, root, seen));
}

/**
 * Which branch of `union` an error at its place comes from, or -1. With ajv's `verbose` errors this follows the
 * schemas themselves (the error's parentSchema inside a branch, through $refs, whose errors ajv reports with schema
 * paths restarting at the referenced schema); without them, only the schema path can tell.
 */
function branchOf(union: ErrorObject, error: ErrorObject, root: unknown): number {
  const branches = union.schema;
  if (Array.isArray(branches) && error.parentSchema !== undefined) {
    return branches.findIndex((branch) => reaches(branch, error.parentSchema, root, new Set()));
  }
  if (!error.schemaPath.startsWith(`${union.schemaPath}/`)) return -1;
  const index = Number(error.schemaPath.slice(union.schemaPath.length + 1).split('/')[0]);
  return Number.isInteger(index) ? index : -1;
}

/**
 * ajv's errors (allErrors; best with `verbose`, and the root schema for its $refs) as violations a caller can act
 * on. The alternatives of a union at one place become one violation ("must have required property 'text', or must
 * have required property 'html'") instead of separate demands of which only one need be met, also when a branch
 * is a $ref or holds a union of its own (`to: 5` against recipients = recipient | recipient[], recipient = address
 * | { address }: "must be string, or must be object, or must be array"); the summaries are left out when other
 * errors say what is wrong; a violation repeated (the same place and message) is listed once.
 */
export function violationsOf(errors: readonly ErrorObject[] | null | undefined, root?: unknown): Violation[] {
  const all = errors ?? [];
  const specific = all.filter((error) => !SUMMARIES.has(error.keyword));
  // A summary stays when nothing more specific explains it (a oneOf that matched two branches has nothing below
  // it): explained means a specific error at its place or inside it.
  const explained = (summary: ErrorObject) =>
    specific.some((error) => error.instancePath === summary.instancePath || error.instancePath.startsWith(`${summary.instancePath}/`));
  const unexplained = all.filter((error) => SUMMARIES.has(error.keyword) && !explained(error));
  // Unions in ajv's order, which finishes an inner union (a branch's own) before the outer one: each merged union
  // is represented by its own summary error, carrying the merged message, which an outer union may merge in turn.
  const standsFor = new Map<ErrorObject, string>();
  const merged = new Set<ErrorObject>();
  for (const union of all) {
    if (union.keyword !== 'anyOf' && union.keyword !== 'oneOf') continue;
    const byBranch = new Map<number, Set<string>>();
    const members: ErrorObject[] = [];
    for (const error of all) {
      if (error === union || merged.has(error) || error.instancePath !== union.instancePath || error.keyword === 'additionalProperties') continue;
      if (SUMMARIES.has(error.keyword) && !standsFor.has(error)) continue;
      const branch = branchOf(union, error, root);
      if (branch < 0) continue;
      let messages = byBranch.get(branch);
      if (!messages) byBranch.set(branch, (messages = new Set()));
      messages.add(standsFor.get(error) ?? messageOf(error));
      members.push(error);
    }
    // A branch without an error here fits the value at this place, and what is wrong lies inside it (or is an
    // unknown property here, reported on its own): the other branches' demands are noise (an array of recipients
    // with one bad entry is not "must be string, or must be object").
    const branchCount = Array.isArray(union.schema) ? union.schema.length : undefined;
    const wrongInside = all.some(
      (error) => error.instancePath.startsWith(`${union.instancePath}/`) || (error.keyword === 'additionalProperties' && error.instancePath === union.instancePath),
    );
    if (branchCount !== undefined && byBranch.size < branchCount && wrongInside) {
      for (const error of members) {
        merged.add(error);
        standsFor.delete(error);
      }
      merged.add(union);
      continue;
    }
    if (byBranch.size < 2) continue;
    for (const error of members) {
      merged.add(error);
      standsFor.delete(error);
    }
    // Errors of one branch must all be fixed ("and"); any one branch will do ("or").
    const branchMessages = [...byBranch.values()].map((messages) =>
      messages.size === 1 ? [...messages][0] : [...messages].map((message) => (message.includes(', or ') ? `(${message})` : message)).join(' and '),
    );
    standsFor.set(union, [...new Set(branchMessages)].join(', or '));
  }
  const result: Violation[] = [];
  for (const error of all) {
    const message = standsFor.get(error);
    if (message !== undefined) result.push(violation(error, message));
    else if (merged.has(error)) continue;
    else if (specific.includes(error) || unexplained.includes(error)) result.push(violation(error));
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

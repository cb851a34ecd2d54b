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

/** Keywords that apply subschemas to the same value: errors they cause stay at the same place in the body. */
const IN_PLACE = new Set(['allOf', 'anyOf', 'oneOf', 'then', 'else', 'dependentSchemas', 'dependencies']);
/** Keywords whose values are not subschemas to look into (data, names; `not` and `if` never surface their errors). */
const NOT_INTO = new Set(['enum', 'const', 'default', 'examples', 'required', 'type', 'not', 'if', 'definitions', '$defs', 'title', 'description']);

/**
 * Whether `target` is `node` or a schema `node` applies (through local $refs) to the same value (`inPlace`) or to
 * it or anything inside it. Follows the schemas themselves: ajv restarts schema paths at each $ref.
 */
function reaches(node: unknown, target: unknown, root: unknown, inPlace: boolean, seen = new Set<unknown>()): boolean {
  if (node === target) return true;
  if (node === null || typeof node !== 'object' || seen.has(node)) return false;
  seen.add(node);
  if (Array.isArray(node)) return node.some((item) => reaches(item, target, root, inPlace, seen));
  const schema = node as Record<string, unknown>;
  if (typeof schema.$ref === 'string' && reaches(resolveRef(schema.$ref, root), target, root, inPlace, seen)) return true;
  for (const key in schema) {
    if (NOT_INTO.has(key) || (inPlace && !IN_PLACE.has(key))) continue;
    if (reaches(schema[key], target, root, inPlace, seen)) return true;
  }
  return false;
}

/** Whether `error` can come from branch `index` of `union`: by the schemas (verbose errors), else by schema path. */
function fromBranch(union: ErrorObject, index: number, error: ErrorObject, root: unknown): boolean {
  const branches = union.schema;
  if (Array.isArray(branches) && error.parentSchema !== undefined) {
    return reaches(branches[index], error.parentSchema, root, error.instancePath === union.instancePath);
  }
  return error.schemaPath.startsWith(`${union.schemaPath}/${index}/`);
}

const sameError = (a: ErrorObject, b: ErrorObject) =>
  a.keyword === b.keyword && a.instancePath === b.instancePath && a.parentSchema === b.parentSchema && JSON.stringify(a.params) === JSON.stringify(b.params);

/**
 * The errors of a union's branches, with the branch each came from. ajv reports them just before the union's own
 * error, branch after branch: walking back from it, each error is given the last branch (not after the one of the
 * error after it) it can come from. The walk stops at an error outside the union's place, one no branch explains,
 * or the same error again in one branch (the same schema used beside the union as well as inside it).
 */
function branchErrors(all: readonly ErrorObject[], at: number, root: unknown): { error: ErrorObject; branch: number }[] {
  const union = all[at];
  const count = Array.isArray(union.schema) ? union.schema.length : Number.POSITIVE_INFINITY;
  const inside = `${union.instancePath}/`;
  const run: { error: ErrorObject; branch: number }[] = [];
  let latest = Number.isFinite(count) ? count - 1 : Number.MAX_SAFE_INTEGER;
  for (let i = at - 1; i >= 0; i--) {
    const error = all[i];
    if (error.instancePath !== union.instancePath && !error.instancePath.startsWith(inside)) break;
    let branch = -1;
    if (Number.isFinite(count)) {
      for (let k = latest; k >= 0; k--) {
        if (fromBranch(union, k, error, root)) {
          branch = k;
          break;
        }
      }
    } else {
      const index = error.schemaPath.startsWith(`${union.schemaPath}/`) ? Number(error.schemaPath.slice(union.schemaPath.length + 1).split('/')[0]) : -1;
      if (Number.isInteger(index) && index <= latest) branch = index;
    }
    if (branch < 0 || run.some((seen) => seen.branch === branch && sameError(seen.error, error))) break;
    run.push({ error, branch });
    latest = branch;
  }
  return run;
}

/** At most this many of ajv's errors are read (a 10 MB body can break a schema millions of times)... */
const MAX_ERRORS = 1000;
/** ...and at most this many violations listed, the last entry saying that more were found. */
const MAX_VIOLATIONS = 100;

/**
 * ajv's errors (allErrors; best with `verbose`, and the root schema for its $refs) as violations a caller can act
 * on. The alternatives of a union at one place become one violation ("must have required property 'text', or must
 * have required property 'html'") instead of separate demands of which only one need be met, also when a branch
 * is a $ref or holds a union of its own (`to: 5` against recipients = recipient | recipient[], recipient = address
 * | { address }: "must be string, or must be object, or must be array"). When one branch fits the value's type and
 * what is wrong lies inside it, while the others only want another type, those are left out (an array of
 * recipients with one bad entry is not "must be string, or must be object"). Summaries are left out when other
 * errors say what is wrong; a violation repeated (the same place and message) is listed once.
 */
export function violationsOf(errors: readonly ErrorObject[] | null | undefined, root?: unknown): Violation[] {
  const found = errors ?? [];
  const all = found.length > MAX_ERRORS ? found.slice(0, MAX_ERRORS) : found;
  const specific = new Set(all.filter((error) => !SUMMARIES.has(error.keyword)));
  // A summary stays when nothing more specific explains it (a oneOf that matched two branches has nothing below
  // it): explained means a specific error at its place or inside it.
  const explainedPlaces = new Set<string>();
  for (const error of specific) {
    for (let path = error.instancePath; ; path = path.slice(0, path.lastIndexOf('/'))) {
      if (explainedPlaces.has(path)) break;
      explainedPlaces.add(path);
      if (path === '') break;
    }
  }
  // Unions in ajv's order, which finishes an inner union (a branch's own) before the outer one: a merged union is
  // represented by its own error, carrying the merged message, which an outer union may merge in turn.
  const standsFor = new Map<ErrorObject, string>();
  /** Merged unions whose alternatives all asked for another type. */
  const typeOnly = new Set<ErrorObject>();
  const merged = new Set<ErrorObject>();
  const isTypeError = (error: ErrorObject) => error.keyword === 'type' || error.keyword === 'false schema' || typeOnly.has(error);
  all.forEach((union, at) => {
    if (union.keyword !== 'anyOf' && union.keyword !== 'oneOf') return;
    const run = branchErrors(all, at, root);
    const here = run.filter(
      ({ error }) =>
        error.instancePath === union.instancePath && !merged.has(error) && error.keyword !== 'additionalProperties' && (!SUMMARIES.has(error.keyword) || standsFor.has(error)),
    );
    const branchesHere = new Set(here.map(({ branch }) => branch));
    const consume = (members: typeof here) => {
      for (const { error } of members) {
        merged.add(error);
        standsFor.delete(error);
      }
    };
    // A branch with errors only inside the value (or an unknown property here) fits it; if every other branch only
    // wants another type, their demands are noise.
    const fits = run.some(({ branch }) => !branchesHere.has(branch));
    if (fits && Array.isArray(union.schema) && here.length > 0 && here.every(({ error }) => isTypeError(error))) {
      consume(here);
      merged.add(union);
      return;
    }
    if (branchesHere.size < 2) return;
    // Errors of one branch must all be fixed ("and"); any one branch will do ("or"). In branch order.
    const byBranch = new Map<number, Set<string>>();
    for (const { error, branch } of here.toReversed()) {
      let messages = byBranch.get(branch);
      if (!messages) byBranch.set(branch, (messages = new Set()));
      messages.add(standsFor.get(error) ?? messageOf(error));
    }
    consume(here);
    const branchMessages = [...byBranch.values()].map((messages) =>
      messages.size === 1 ? [...messages][0] : [...messages].map((message) => (message.includes(', or ') ? `(${message})` : message)).join(' and '),
    );
    standsFor.set(union, [...new Set(branchMessages)].join(', or '));
    if (here.every(({ error }) => isTypeError(error))) typeOnly.add(union);
  });
  const result: Violation[] = [];
  for (const error of all) {
    const message = standsFor.get(error);
    if (message !== undefined) result.push(violation(error, message));
    else if (merged.has(error)) continue;
    else if (specific.has(error) || !explainedPlaces.has(error.instancePath)) result.push(violation(error));
  }
  const listed = dedupe(result);
  if (listed.length <= MAX_VIOLATIONS && found.length === all.length) return listed;
  return [...listed.slice(0, MAX_VIOLATIONS - 1), { pointer: '/', message: `and more: the body breaks the schema in ${found.length} ways in all; the first are listed` }];
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

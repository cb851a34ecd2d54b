import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { unknownPropertyOf } from '../errors.ts';
import { FlowError, capped, isAboutSender, type FlowProblem } from './errors.ts';
import { resolveParameters, substituteParameters } from './parameters.ts';
import { FlowSchema, STEP_KINDS, type FlowDefinition } from './schema.ts';

const FLOW_FILES = ['flow.yaml', 'flow.yml'];
const validateFlow = new Ajv({ allErrors: true, strict: false, verbose: true }).compile<FlowDefinition>(FlowSchema);

/** A flow file read and validated: either its definition (parameters applied) or why not. */
export interface FlowSource {
  id: string;
  dir: string;
  /** flow.yaml, relative to the flows dir (as shown in errors) */
  file: string;
  definition?: FlowDefinition;
  parameters: Record<string, string | number | boolean>;
  error?: FlowProblem;
  /** Further problems found with `error` (schema errors at other places in the file). */
  otherErrors?: FlowProblem[];
  /** A flow that cannot deploy whose `sender` is valid all the same: what the flows API shows of it. */
  sender?: FlowDefinition['sender'];
}


function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'additionalProperties':
      // Under a map of names (set-step headers) the "unknown property" is a name the pattern refused: say what it allows.
      return `unknown property "${unknownPropertyOf(error)}"${error.parentSchema?.patternProperties && error.parentSchema.description ? ` (${error.parentSchema.description})` : ''}`;
    case 'required':
      return `missing required property "${(error.params as { missingProperty: string }).missingProperty}"`;
    case 'pattern':
      return `${error.message ?? 'does not match the expected pattern'}${error.parentSchema?.description ? ` (${error.parentSchema.description})` : ''}`;
    default:
      return error.message ?? 'is invalid';
  }
}

/**
 * One message for a failed union (anyOf) at a place, which reports each branch as well: say what was expected
 * instead, from the union's description, its allowed constants, or the keys of its object branches.
 */
function describePlace(errors: ErrorObject[]): string {
  const union = errors.find((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')!;
  if (union.parentSchema?.description) return `must be ${union.parentSchema.description}`;
  const branches = errors.filter((e) => e !== union);
  if (branches.length > 0 && branches.every((e) => e.keyword === 'const')) {
    return `must be one of ${branches.map((e) => JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)).join(', ')}`;
  }
  // Object branches (http auth): name each branch by its required key.
  const alternatives = (union.schema as { required?: string[] }[] | undefined) ?? [];
  const keys = alternatives.flatMap((branch) => branch.required ?? []);
  if (keys.length === alternatives.length && keys.length > 0) return `must have exactly one of ${keys.map((key) => `"${key}"`).join(', ')}, and nothing else`;
  return describe(branches[0] ?? union);
}

/**
 * ajv's errors as problems, one per place in the file, in the order ajv found them (the schema's). A union that
 * failed at a place with errors deeper inside (a branch that fits but holds a wrong value) is left to those.
 */
function schemaProblems(errors: ErrorObject[], file: string): FlowProblem[] {
  const byPlace = new Map<string, ErrorObject[]>();
  for (const error of errors) {
    const place = byPlace.get(error.instancePath);
    if (place) place.push(error);
    else byPlace.set(error.instancePath, [error]);
  }
  const places = [...byPlace].filter(
    ([pointer, found]) => !found.some((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf') || !errors.some((e) => e.instancePath.startsWith(`${pointer}/`)),
  );
  // A union is one problem (what was expected there); otherwise each error at a place is one (two unknown keys).
  return places.flatMap(([pointer, found]) => {
    const messages = found.some((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf') ? [describePlace(found)] : [...new Set(found.map(describe))];
    return messages.map((message) => ({ file, pointer, message }));
  });
}

/** Checks what JSON Schema cannot say clearly: exactly one kind key per step, no credentials let in. */
function checkSemantics(definition: FlowDefinition, file: string): void {
  const forbidden = (definition.sender.allowedHeaders ?? []).findIndex((h) => ['authorization', 'cookie', 'proxy-authorization'].includes(h.toLowerCase()));
  if (forbidden >= 0) {
    throw new FlowError({
      file,
      pointer: `/sender/allowedHeaders/${forbidden}`,
      message: "the caller's Authorization and Cookie never become message headers, so they cannot be allowed",
    });
  }
  definition.steps.forEach((step, index) => {
    if (step.timeout !== undefined && step.script === undefined) {
      // Easy to write one level too high for an http step, where it would be ignored.
      throw new FlowError({ file, pointer: `/steps/${index}/timeout`, message: 'a step-level timeout applies to script steps only: an http step takes http.timeout' });
    }
    const kinds = STEP_KINDS.filter((kind) => step[kind] !== undefined);
    if (kinds.length !== 1) {
      throw new FlowError({
        file,
        pointer: `/steps/${index}`,
        message: kinds.length === 0 ? `a step needs one of ${STEP_KINDS.join(', ')}` : `a step has exactly one kind, found ${kinds.join(' and ')}`,
      });
    }
  });
}

/** Reads and validates one flow folder. Never throws: problems come back in `error`. */
export async function readFlow(flowsDir: string, dir: string, overrides: Record<string, string>): Promise<FlowSource> {
  const folder = basename(dir);
  let fileName = FLOW_FILES[0];
  for (const candidate of FLOW_FILES) {
    if (await stat(join(dir, candidate)).then(() => true, () => false)) {
      fileName = candidate;
      break;
    }
  }
  const file = relative(flowsDir, join(dir, fileName)) || fileName;
  const source: FlowSource = { id: folder, dir, file, parameters: {} };
  try {
    const text = await readFile(join(dir, fileName), 'utf8').catch(() => {
      throw new FlowError({ file, pointer: '', message: `no ${FLOW_FILES.join(' or ')} in ${folder}` });
    });
    const document = parseDocument(text, { prettyErrors: true });
    if (document.errors.length > 0) {
      const first = document.errors[0];
      const where = first.linePos ? ` (line ${first.linePos[0].line}, column ${first.linePos[0].col})` : '';
      // yaml's first line ends "at line L, column C:" before its code frame: the place is given once, up front.
      const reason = first.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '');
      throw new FlowError({ file, pointer: '', message: `YAML syntax error${where}: ${reason}` });
    }
    const raw = document.toJS() as Record<string, unknown> | null;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new FlowError({ file, pointer: '', message: 'a flow file is a YAML mapping' });
    // Unknown top-level keys first, before parameters are substituted: with a misspelt "parameters", every
    // {{NAME}} would read as undeclared, and that would be the only error shown.
    const unknownKeys = Object.keys(raw).filter((key) => !Object.hasOwn(FlowSchema.properties, key));
    const unknownKeyProblems = unknownKeys.map((key) => ({ file, pointer: '', message: `unknown property "${key}"` }));
    const known = unknownKeys.length > 0 ? Object.fromEntries(Object.entries(raw).filter(([key]) => !unknownKeys.includes(key))) : raw;
    if (typeof known.id === 'string') source.id = known.id;
    const declared = known.parameters && typeof known.parameters === 'object' ? (known.parameters as Record<string, string | number | boolean>) : undefined;
    source.parameters = resolveParameters(declared, overrides);
    let substituted: Record<string, unknown>;
    try {
      substituted = substituteParameters(known, source.parameters, file) as Record<string, unknown>;
    } catch (err) {
      // An undeclared parameter beside an unknown key is most likely that key's doing: the key alone is reported.
      if (unknownKeyProblems.length > 0 && err instanceof FlowError) throw new FlowError(unknownKeyProblems[0], unknownKeyProblems.slice(1));
      throw err;
    }
    const problems = [...unknownKeyProblems, ...(validateFlow(substituted) ? [] : schemaProblems(validateFlow.errors ?? [], file))];
    // Every schema problem is known here (none cut off yet): a sender none of them is about is valid by the schema.
    if (!problems.some(isAboutSender)) source.sender = substituted.sender as FlowDefinition['sender'];
    if (problems.length > 0) {
      const [first, ...others] = capped(problems, file);
      throw new FlowError(first, others);
    }
    // Valid by the schema (checked just above), now that no problem was found.
    const definition = substituted as FlowDefinition;
    checkSemantics(definition, file);
    source.definition = definition;
  } catch (err) {
    if (!(err instanceof FlowError)) throw err;
    source.error = err.problem;
    if (err.others.length > 0) source.otherErrors = err.others;
  }
  return source;
}

/** Every flow folder under `flowsDir`, sorted by folder name. A missing flows dir is an empty list. */
export async function readFlows(flowsDir: string, overrides: Record<string, string>): Promise<FlowSource[]> {
  const entries = await readdir(flowsDir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    if (err.code === 'ENOTDIR') throw new Error(`${flowsDir} is a file, not a folder: give the folder that holds one folder per flow (each with its flow.yaml)`);
    throw err;
  });
  // Folders starting with _ or . hold what flows share (scripts, schemas); they are not flows.
  const folders = entries.filter((e) => e.isDirectory() && !/^[_.]/.test(e.name)).map((e) => e.name).sort();
  return Promise.all(folders.map((name) => readFlow(flowsDir, join(flowsDir, name), overrides)));
}

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import type { Dispatcher } from 'undici';
import type { SecurityMaterial } from '../runtime/context.ts';
import { compileStep, stepKind, type CompiledStep } from '../runtime/steps/index.ts';
import { FlowError, isAboutSender, lineAndColumn, type FlowProblem } from './errors.ts';
import { readFlows, type FlowSource } from './loader.ts';
import type { FlowDefinition } from './schema.ts';

export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;
export const DEFAULT_SENDER_ROLE = 'ESBMessaging.send';
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

// ajv-formats is CommonJS; its default import is the plugin function under ESM interop.
const addFormats = addFormatsPlugin as unknown as (ajv: Ajv) => Ajv;

function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^\s*(\d+)\s*(B|KB|MB|GB)?\s*$/.exec(value)!;
  return Number(match[1]) * SIZE_UNITS[match[2] ?? 'B'];
}

/** What the sender needs at run time for a deployed flow. */
export interface FlowRuntime {
  steps: CompiledStep[];
  bodyLimit: number;
  /** lower-case inbound header name → the name the message keeps */
  allowedHeaders: Map<string, string>;
  /** The roles that may send to the flow (its sender role; admins always may). */
  senderRoles: readonly string[];
  validateBody?: ValidateFunction;
  receiver?: string;
}

/** A flow as the flows API shows it, with its runtime when deployed. */
export interface Flow {
  id: string;
  file: string;
  description?: string;
  endpoint?: string;
  method?: string;
  role?: string;
  status: 'deployed' | 'error';
  steps: { name: string; kind: string }[];
  error?: FlowProblem;
  /** Further problems found with `error`, for `iflow check` and the log (the API shows `error`). */
  otherErrors?: FlowProblem[];
  /** What a deployed flow's compilers found suspicious but not wrong (shown by `iflow check` and logged). */
  warnings?: FlowProblem[];
  runtime?: FlowRuntime;
}

export interface DeployServices {
  securityMaterial: SecurityMaterial;
  dispatcher: Dispatcher;
}

/** A schema file's compile: its validator, or what is wrong, said of the file (each flow names it its own way). */
type SchemaOutcome = { validate: ValidateFunction } | { missing: true } | { problem: string };

/** The sender schemas of one deploy: one Ajv, and each schema file compiled once however many flows share it. */
interface SchemaCompiler {
  ajv: Ajv;
  compiled: Map<string, Promise<SchemaOutcome>>;
}

/** Compiled once per file: a schema with an `$id`, compiled twice into one Ajv, would be refused the second time. */
async function compileSchema(schemas: SchemaCompiler, source: FlowSource, file: string): Promise<ValidateFunction> {
  const path = resolve(source.dir, file);
  let compiled = schemas.compiled.get(path);
  if (!compiled) schemas.compiled.set(path, (compiled = compileSchemaFile(schemas.ajv, path)));
  const outcome = await compiled;
  if ('validate' in outcome) return outcome.validate;
  if ('missing' in outcome) throw new FlowError({ file: source.file, pointer: '/sender/schema', message: `schema file not found: ${file}` });
  throw new FlowError({ file: `${source.id}/${file}`, pointer: '', message: outcome.problem });
}

async function compileSchemaFile(ajv: Ajv, path: string): Promise<SchemaOutcome> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { missing: true };
  }
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    return { problem: jsonSyntaxError(err, text) };
  }
  try {
    return { validate: ajv.compile(schema as object) };
  } catch (err) {
    return { problem: `invalid JSON Schema: ${(err as Error).message}` };
  }
}

/**
 * JSON.parse's error in a flow's own file, with its position as a line and column (as YAML errors give theirs):
 * "JSON syntax error (line 3, column 3): Expected double-quoted property name". V8 gives some errors no position.
 */
function jsonSyntaxError(err: unknown, text: string): string {
  const reason = err instanceof Error ? err.message : String(err);
  const at = / (?:in|after) JSON at position (\d+)/.exec(reason);
  // Without a position V8 quotes the text around the error, over several lines: its first words say enough.
  if (!at) return `JSON syntax error: ${reason.replace(/, (?:\.\.\.)?"[\s\S]*" is not valid JSON$/, '').replace(/\s+/g, ' ')}`;
  const { line, column } = lineAndColumn(text, Number(at[1]));
  return `JSON syntax error (line ${line}, column ${column}): ${reason.slice(0, at.index)}${at[0].startsWith(' after') ? ' after the JSON' : ''}`;
}

async function compileFlow(source: FlowSource, definition: FlowDefinition, services: DeployServices, schemas: SchemaCompiler, warnings: FlowProblem[]): Promise<FlowRuntime> {
  // Frozen: scripts and mappings of every message read the same object, and none may change it for the others.
  const parameters = Object.freeze(Object.fromEntries(Object.entries(source.parameters).map(([k, v]) => [k, String(v)])));
  const steps: CompiledStep[] = [];
  // Every step is compiled, and the sender's schema too, so that one run of `iflow check` lists each one's error.
  const problems: FlowProblem[] = [];
  const collect = async <T>(compile: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await compile();
    } catch (err) {
      if (!(err instanceof FlowError)) throw err;
      problems.push(err.problem, ...err.others);
      return undefined;
    }
  };
  for (const [index, step] of definition.steps.entries()) {
    const compiled = await collect(() =>
      compileStep(step, index, {
        flowId: source.id,
        flowDir: source.dir,
        file: source.file,
        pointer: `/steps/${index}`,
        parameters,
        securityMaterial: services.securityMaterial,
        dispatcher: services.dispatcher,
        warn: (problem) => warnings.push(problem),
      }),
    );
    if (compiled) steps.push(compiled);
  }
  const { sender } = definition;
  const validateBody = sender.schema ? await collect(() => compileSchema(schemas, source, sender.schema!)) : undefined;
  if (problems.length > 0) throw new FlowError(problems[0], problems.slice(1));
  return {
    steps,
    bodyLimit: sender.bodyLimit === undefined ? DEFAULT_BODY_LIMIT : parseSize(sender.bodyLimit),
    allowedHeaders: new Map((sender.allowedHeaders ?? []).map((name) => [name.toLowerCase(), name])),
    senderRoles: [sender.role ?? DEFAULT_SENDER_ROLE],
    validateBody,
    receiver: steps.findLast((s) => s.receiver)?.receiver,
  };
}

function describeFlow(source: FlowSource): Flow {
  const definition = source.definition;
  // A flow that cannot deploy still shows its endpoint when its sender is valid: which endpoint is down.
  const sender = definition?.sender ?? source.sender;
  return {
    id: source.id,
    file: source.file,
    description: definition?.description,
    endpoint: sender?.path,
    method: sender ? (sender.method ?? 'POST') : undefined,
    role: sender ? (sender.role ?? DEFAULT_SENDER_ROLE) : undefined,
    status: 'error',
    steps: (definition?.steps ?? []).map((step, index) => ({ name: step.name ?? `${stepKind(step)} ${index + 1}`, kind: stepKind(step) })),
  };
}

/** The deployed flows, looked up by endpoint path (case-insensitive) on the hot path. */
export class FlowRegistry {
  private readonly byPath = new Map<string, Flow>();

  constructor(readonly flows: readonly Flow[]) {
    for (const flow of flows) if (flow.status === 'deployed') this.byPath.set(flow.endpoint!.toLowerCase(), flow);
  }

  get(id: string): Flow | undefined {
    return this.flows.find((flow) => flow.id === id);
  }

  /** The deployed flow serving `path` (any case, no query string), if any. */
  match(path: string): Flow | undefined {
    return this.byPath.get(path.toLowerCase());
  }

  get errors(): Flow[] {
    return this.flows.filter((flow) => flow.status === 'error');
  }
}

/**
 * Reads, validates and compiles every flow under the flows dir. A broken flow is kept with its
 * error (file, JSON pointer, reason) and not served; the others deploy. Ids and paths must be unique.
 */
export async function deployFlows(flowsDir: string, overrides: Record<string, string>, services: DeployServices): Promise<FlowRegistry> {
  const sources = await readFlows(flowsDir, overrides);
  // verbose: errors carry the schemas they come from, which is how violationsOf tells a union's branches through $refs.
  const schemas: SchemaCompiler = { ajv: addFormats(new Ajv({ allErrors: true, strict: false, verbose: true })), compiled: new Map() };
  const flows: Flow[] = [];
  const claimedPaths = new Map<string, string>();
  const claimedIds = new Set<string>();
  for (const source of sources) {
    const flow = describeFlow(source);
    flows.push(flow);
    try {
      if (source.error) throw new FlowError(source.error, source.otherErrors);
      const definition = source.definition!;
      if (claimedIds.has(source.id)) throw new FlowError({ file: source.file, pointer: '/id', message: `another flow already has the id "${source.id}"` });
      const path = definition.sender.path.toLowerCase();
      const owner = claimedPaths.get(path);
      if (owner) throw new FlowError({ file: source.file, pointer: '/sender/path', message: `path ${definition.sender.path} is already served by flow "${owner}"` });
      const warnings: FlowProblem[] = [];
      flow.runtime = await compileFlow(source, definition, services, schemas, warnings);
      flow.status = 'deployed';
      if (warnings.length > 0) flow.warnings = warnings;
      claimedIds.add(source.id);
      claimedPaths.set(path, source.id);
    } catch (err) {
      if (!(err instanceof FlowError)) throw err;
      flow.error = err.problem;
      if (err.others.length > 0) flow.otherErrors = err.others;
      // Its endpoint is shown only from a sender found right (not one on a taken path, or missing its schema).
      if ([err.problem, ...err.others].some(isAboutSender)) {
        delete flow.endpoint;
        delete flow.method;
        delete flow.role;
      }
    }
  }
  return new FlowRegistry(flows);
}

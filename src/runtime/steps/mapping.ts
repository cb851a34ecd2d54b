import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import jsonata from 'jsonata';
import { FlowError, capped } from '../../flows/errors.ts';
import { notAParameter } from '../../flows/parameters.ts';
import { MessageFailure } from '../errors.ts';
import type { StepEnvironment, StepRun } from './types.ts';

/** Compiles the JSONata file once; each message's JSON body is replaced by the expression's result. */
export async function compileMappingStep(file: string, env: StepEnvironment): Promise<StepRun> {
  const source = await readFile(resolve(env.flowDir, file), 'utf8').catch(() => {
    throw new FlowError({ file: env.file, pointer: `${env.pointer}/mapping`, message: `mapping file not found: ${file}` });
  });
  let expression: jsonata.Expression;
  try {
    expression = jsonata(source);
  } catch (err) {
    const e = err as { message: string; position?: number };
    throw new FlowError({ file: `${env.flowId}/${file}`, pointer: '', message: `JSONata syntax error${e.position !== undefined ? ` at character ${e.position}` : ''}: ${e.message}` });
  }
  const tree = expression.ast();
  const bound = boundNames(tree);
  const bindings = { parameters: env.parameters };
  // Every misspelt name at once, not one per deploy (a syntax error stops at the first: what follows it is guesswork).
  const problems = [
    // An expression that binds $parameters itself (`$parameters := …`, a lambda argument) means its own: not checked.
    ...(bound.has('parameters') ? [] : unknownParameters(tree, env.parameters)).map(({ name, position }) =>
      notAParameter(`$parameters.${name} at character ${position}`, env.parameters),
    ),
    ...(await unknownFunctions(calledNames(tree), new Set([...bound, ...Object.keys(bindings)]))).map(
      ({ name, position }) => `$${name} at character ${position} is not a JSONata function, nor one the mapping binds`,
    ),
  ].map((message) => ({ file: `${env.flowId}/${file}`, pointer: '', message }));
  if (problems.length > 0) {
    const [first, ...others] = capped(problems, `${env.flowId}/${file}`);
    throw new FlowError(first, others);
  }
  return async (message) => {
    let input: unknown;
    try {
      input = message.getBodyAsJson();
    } catch (err) {
      // The caller's own body that is not JSON is the caller's error (400 INVALID_JSON); a step's is the flow's.
      if (err instanceof MessageFailure) throw err;
      throw new MessageFailure('MAPPING_ERROR', `mapping ${file}: the body is not JSON`);
    }
    try {
      const result = await expression.evaluate(input, bindings);
      message.setBody(result === undefined ? null : result);
    } catch (err) {
      // JSONata's message alone ("Attempted to invoke a non-function") does not say where: add its token and position.
      const { message, token, position } = err as { message: string; token?: unknown; position?: unknown };
      const where = [typeof token === 'string' ? `"${token}"` : '', typeof position === 'number' ? `at character ${position}` : ''].filter(Boolean).join(' ');
      throw new MessageFailure('MAPPING_ERROR', `mapping ${file} failed${where ? ` (${where})` : ''}: ${message}`);
    }
  };
}

/** Calls `visit` on every node of a JSONata tree (its objects), depth first. */
function walk(node: unknown, visit: (node: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  visit(node as Record<string, unknown>);
  for (const value of Object.values(node)) walk(value, visit);
}

/**
 * Each `$parameters.NAME` in a JSONata tree whose NAME the flow does not declare (once per name): a misspelt
 * parameter would otherwise be empty at run time. Only that literal form is checked (not `$lookup($parameters, …)`).
 */
function unknownParameters(tree: unknown, parameters: Readonly<Record<string, string>>): { name: string; position: number }[] {
  const found = new Map<string, number>();
  walk(tree, (node) => {
    const steps = node.steps as { type: string; value: unknown; position?: number }[] | undefined;
    if (node.type !== 'path' || !steps || steps[0]?.type !== 'variable' || steps[0].value !== 'parameters' || steps[1]?.type !== 'name') return;
    const name = String(steps[1].value);
    if (!Object.hasOwn(parameters, name) && !found.has(name)) found.set(name, steps[1].position ?? 0);
  });
  return [...found].map(([name, position]) => ({ name, position }));
}

/** Names a JSONata tree binds: `$x := …`, lambda arguments, and a path's `@$x` and `#$x`. */
function boundNames(tree: unknown): Set<string> {
  const names = new Set<string>();
  walk(tree, (node) => {
    const { type, lhs, arguments: args, focus, index } = node as { type?: string; lhs?: { value?: unknown }; arguments?: { value?: unknown }[]; focus?: unknown; index?: unknown };
    if (type === 'bind' && typeof lhs?.value === 'string') names.add(lhs.value);
    if (type === 'lambda') for (const arg of args ?? []) if (typeof arg.value === 'string') names.add(arg.value);
    if (typeof focus === 'string') names.add(focus);
    if (typeof index === 'string') names.add(index);
  });
  return names;
}

/** Every `$name(…)` call in a JSONata tree, by name, with the position of its first call. */
function calledNames(tree: unknown): Map<string, number> {
  const calls = new Map<string, number>();
  walk(tree, (node) => {
    const procedure = node.procedure as { type?: string; value?: unknown; position?: number } | undefined;
    if ((node.type === 'function' || node.type === 'partial') && procedure?.type === 'variable' && typeof procedure.value === 'string' && !calls.has(procedure.value)) {
      calls.set(procedure.value, procedure.position ?? 0);
    }
  });
  return calls;
}

/**
 * The functions called that are neither JSONata's own, nor `bound` (in the expression, or iflow's bindings): a
 * misspelt `$sumx(…)` would otherwise fail only when a message comes. Whether JSONata has a function is asked of
 * JSONata itself (`$name` evaluates to it), not of a list kept here.
 */
async function unknownFunctions(calls: Map<string, number>, bound: ReadonlySet<string>): Promise<{ name: string; position: number }[]> {
  const unknown: { name: string; position: number }[] = [];
  for (const [name, position] of calls) {
    if (bound.has(name) || !/^\w+$/.test(name)) continue;
    if ((await jsonata(`$${name}`).evaluate({})) === undefined) unknown.push({ name, position });
  }
  return unknown;
}

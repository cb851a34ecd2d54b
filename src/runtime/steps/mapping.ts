import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import jsonata from 'jsonata';
import { FlowError } from '../../flows/errors.ts';
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
  // An expression that binds $parameters itself (`$parameters := …`, a lambda argument) means its own: not checked.
  const rebinds = /\$parameters\s*:=|function\s*\([^)]*\$parameters\b/.test(source);
  const unknown = rebinds ? undefined : unknownParameter(expression.ast(), env.parameters);
  if (unknown) {
    throw new FlowError({
      file: `${env.flowId}/${file}`,
      pointer: '',
      message: notAParameter(`$parameters.${unknown.name} at character ${unknown.position}`, env.parameters),
    });
  }
  const bindings = { parameters: env.parameters };
  const notAFunction = await unknownFunction(expression.ast(), Object.keys(bindings));
  if (notAFunction) {
    throw new FlowError({
      file: `${env.flowId}/${file}`,
      pointer: '',
      message: `$${notAFunction.name} at character ${notAFunction.position} is not a JSONata function, nor one the mapping binds`,
    });
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

/**
 * The first `$parameters.NAME` in a JSONata tree whose NAME the flow does not declare: a misspelt parameter would
 * otherwise be empty at run time. Only that literal form is checked (not `$lookup($parameters, …)`).
 */
function unknownParameter(node: unknown, parameters: Readonly<Record<string, string>>): { name: string; position: number } | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = unknownParameter(item, parameters);
      if (found) return found;
    }
    return undefined;
  }
  if (node === null || typeof node !== 'object') return undefined;
  const { type, steps } = node as { type?: string; steps?: { type: string; value: unknown; position?: number }[] };
  if (type === 'path' && steps && steps[0]?.type === 'variable' && steps[0].value === 'parameters' && steps[1]?.type === 'name') {
    const name = String(steps[1].value);
    if (!Object.hasOwn(parameters, name)) return { name, position: steps[1].position ?? 0 };
  }
  for (const value of Object.values(node)) {
    const found = unknownParameter(value, parameters);
    if (found) return found;
  }
  return undefined;
}

/** Names a JSONata tree binds: `$x := …`, lambda arguments, and a path's `@$x` and `#$x`. */
function boundNames(node: unknown, names: Set<string>): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) boundNames(item, names);
    return names;
  }
  if (node === null || typeof node !== 'object') return names;
  const { type, lhs, arguments: args, focus, index } = node as { type?: string; lhs?: { value?: unknown }; arguments?: { value?: unknown }[]; focus?: unknown; index?: unknown };
  if (type === 'bind' && typeof lhs?.value === 'string') names.add(lhs.value);
  if (type === 'lambda') for (const arg of args ?? []) if (typeof arg.value === 'string') names.add(arg.value);
  if (typeof focus === 'string') names.add(focus);
  if (typeof index === 'string') names.add(index);
  for (const value of Object.values(node)) boundNames(value, names);
  return names;
}

/** Every `$name(…)` call in a JSONata tree, by name, with the position of its first call. */
function calledNames(node: unknown, calls: Map<string, number>): Map<string, number> {
  if (Array.isArray(node)) {
    for (const item of node) calledNames(item, calls);
    return calls;
  }
  if (node === null || typeof node !== 'object') return calls;
  const { type, procedure } = node as { type?: string; procedure?: { type?: string; value?: unknown; position?: number } };
  if ((type === 'function' || type === 'partial') && procedure?.type === 'variable' && typeof procedure.value === 'string' && !calls.has(procedure.value)) {
    calls.set(procedure.value, procedure.position ?? 0);
  }
  for (const value of Object.values(node)) calledNames(value, calls);
  return calls;
}

/**
 * The first function a JSONata tree calls that is neither one of JSONata's own, nor bound in the expression, nor
 * one of `bound` (iflow's bindings): a misspelt `$sumx(…)` would otherwise fail only when a message comes. Whether
 * JSONata has a function is asked of JSONata itself (`$name` evaluates to it), not of a list kept here.
 */
async function unknownFunction(tree: unknown, bound: readonly string[]): Promise<{ name: string; position: number } | undefined> {
  const known = boundNames(tree, new Set(bound));
  for (const [name, position] of calledNames(tree, new Map())) {
    if (known.has(name) || !/^\w+$/.test(name)) continue;
    if ((await jsonata(`$${name}`).evaluate({})) === undefined) return { name, position };
  }
  return undefined;
}

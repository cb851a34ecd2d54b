import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import jsonata from 'jsonata';
import { FlowError } from '../../flows/errors.ts';
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
      message: `$parameters.${unknown.name} at character ${unknown.position} is not a parameter of this flow (declared: ${Object.keys(env.parameters).join(', ') || 'none'})`,
    });
  }
  const bindings = { parameters: env.parameters };
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

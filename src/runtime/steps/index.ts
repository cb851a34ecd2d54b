import { parseDuration } from '../../config/duration.ts';
import { STEP_KINDS, type StepDefinition, type StepKind } from '../../flows/schema.ts';
import { compileHttpStep } from './http.ts';
import { compileMappingStep } from './mapping.ts';
import { compileScriptStep } from './script.ts';
import { compileSetStep } from './set.ts';
import type { CompiledStep, StepEnvironment } from './types.ts';

export type { CompiledStep, Execution, StepEnvironment } from './types.ts';

/** A script step's timeout unless its `timeout:` says otherwise (the token service waits less for a token: MESSAGE_TOKEN_DEADLINE_MS). */
export const DEFAULT_SCRIPT_TIMEOUT_MS = 30_000;

/** The step's kind: its one kind key (the flow schema checks there is exactly one). */
export function stepKind(step: StepDefinition): StepKind {
  const kind = STEP_KINDS.find((key) => step[key] !== undefined);
  // Only a kind missing from STEP_KINDS, or a step the schema did not check, gets here.
  if (kind === undefined) throw new Error(`a step without a kind key (${STEP_KINDS.join(', ')}): ${Object.keys(step).join(', ')}`);
  return kind;
}

/** Compiles one step of a flow into the function that runs it per message (files read once, here). */
export async function compileStep(step: StepDefinition, index: number, env: StepEnvironment): Promise<CompiledStep> {
  const kind = stepKind(step);
  const name = step.name ?? `${kind} ${index + 1}`;
  switch (kind) {
    case 'script':
      return { name, kind, run: await compileScriptStep(step.script!, parseDuration(step.timeout ?? DEFAULT_SCRIPT_TIMEOUT_MS), env) };
    case 'mapping':
      return { name, kind, run: await compileMappingStep(step.mapping!, env) };
    case 'set':
      return { name, kind, run: compileSetStep(step.set!, env) };
    case 'http': {
      const run = compileHttpStep(step.http!, env);
      return { name, kind, run, receiver: run.receiver };
    }
  }
}

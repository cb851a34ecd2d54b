import type { Logger } from 'pino';
import type { StepTiming } from '../store/types.ts';
import { toMessageFailure, type MessageFailure } from './errors.ts';
import type { Message } from './message.ts';
import type { CompiledStep, Execution } from './steps/index.ts';

export interface PipelineResult {
  message: Message;
  steps: StepTiming[];
  failure?: MessageFailure & { step?: string };
}

/**
 * Runs a flow's compiled steps over a message, in order, timing each; steps change the message in
 * place. The first failing step ends the run.
 */
export async function runPipeline(steps: readonly CompiledStep[], initial: Message, baseLogger: Logger, bindings: Record<string, string>): Promise<PipelineResult> {
  let log: Logger | undefined;
  const execution: Execution = {
    get log() {
      log ??= baseLogger.child(bindings);
      return log;
    },
  };
  const message = initial;
  const timings: StepTiming[] = [];
  for (const step of steps) {
    const startedAt = Date.now();
    const start = performance.now();
    try {
      await step.run(message, execution);
      timings.push({ name: step.name, kind: step.kind, start: new Date(startedAt).toISOString(), durationMs: round(performance.now() - start), status: 'COMPLETED' });
    } catch (err) {
      timings.push({ name: step.name, kind: step.kind, start: new Date(startedAt).toISOString(), durationMs: round(performance.now() - start), status: 'FAILED' });
      const failure = toMessageFailure(err, 'STEP_ERROR') as MessageFailure & { step?: string };
      failure.step = step.name;
      return { message, steps: timings, failure };
    }
  }
  return { message, steps: timings };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

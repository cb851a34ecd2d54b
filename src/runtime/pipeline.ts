import type { Logger } from 'pino';
import type { StepTiming } from '../store/types.ts';
import { toMessageFailure, type MessageFailure } from './errors.ts';
import type { Message } from './message.ts';
import type { CompiledStep, Execution } from './steps/index.ts';

/** Why a message failed, and in which step (none when it failed before the pipeline). */
export type StepFailure = MessageFailure & { step?: string };

export interface PipelineResult {
  steps: StepTiming[];
  failure?: StepFailure;
}

/**
 * Runs a flow's compiled steps over a message, in order, timing each; steps change the message in
 * place. The first failing step ends the run. The message's logger (bound to message, correlation
 * and flow) is made only when a step asks for it.
 */
export async function runPipeline(steps: readonly CompiledStep[], message: Message, baseLogger: Logger, flowId: string): Promise<PipelineResult> {
  let log: Logger | undefined;
  const execution: Execution = {
    get log() {
      log ??= baseLogger.child({ messageId: message.id, correlationId: message.correlationId, flow: flowId });
      return log;
    },
  };
  const timings: StepTiming[] = [];
  for (const step of steps) {
    const startedAt = Date.now();
    const start = performance.now();
    let failure: StepFailure | undefined;
    try {
      // Synchronous steps (most scripts, set) return nothing: no promise to wait for.
      const pending = step.run(message, execution);
      if (pending) await pending;
    } catch (err) {
      failure = toMessageFailure(err, 'STEP_ERROR');
      failure.step = step.name;
    }
    const status = failure ? 'FAILED' : 'COMPLETED';
    timings.push({ name: step.name, kind: step.kind, start: new Date(startedAt).toISOString(), durationMs: round(performance.now() - start), status });
    if (failure) return { steps: timings, failure };
  }
  return { steps: timings };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

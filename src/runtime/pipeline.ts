import type { Logger } from 'pino';
import type { StepTiming } from '../store/types.ts';
import { scrubLinesOf } from '../logging/index.ts';
import { toMessageFailure, type MessageFailure } from './errors.ts';
import type { Message } from './message.ts';
import type { CompiledStep, Execution } from './steps/index.ts';
import { isoTimestamp } from './timestamps.ts';
import { withoutSecrets } from './secrets.ts';

/** Why a message failed, and in which step (none when it failed before the pipeline). */
export type StepFailure = MessageFailure & { step?: string };

export interface PipelineResult {
  steps: StepTiming[];
  failure?: StepFailure;
  /** The host an http step last sent the message to, if any. */
  receiver?: string;
  /** The secrets the message's steps handed out (Execution.secretSets), for the reply's last check. */
  secretSets?: readonly ReadonlySet<string>[];
}

/**
 * Runs a flow's compiled steps over a message, in order, timing each; steps change the message in
 * place. The first failing step ends the run. The message's logger (bound to message, correlation
 * and flow) is made only when a step asks for it.
 */
export async function runPipeline(steps: readonly CompiledStep[], message: Message, baseLogger: Logger, flowId: string): Promise<PipelineResult> {
  const execution = new MessageExecution(baseLogger, message, flowId);
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
      // Whatever step failed, its text must not quote a secret another step handed out (a token in a header).
      failure.message = withoutSecrets(failure.message, execution.secretSets);
    }
    const status = failure ? 'FAILED' : 'COMPLETED';
    const timing: StepTiming = { name: step.name, kind: step.kind, start: isoTimestamp(startedAt), durationMs: round(performance.now() - start), status };
    if (execution.attempts !== undefined) {
      timing.attempts = execution.attempts;
      execution.attempts = undefined;
    }
    timings.push(timing);
    if (failure) return { steps: timings, failure, receiver: execution.receiver, secretSets: execution.secretSets };
  }
  return { steps: timings, receiver: execution.receiver, secretSets: execution.secretSets };
}

/** What steps see of the run: the message's logger (bound to message, correlation and flow), made on first use. */
class MessageExecution implements Execution {
  private logger: Logger | undefined;
  receiver: string | undefined = undefined;
  attempts: number | undefined = undefined;
  secretSets: ReadonlySet<string>[] | undefined = undefined;
  ownSecrets: Set<string> | undefined = undefined;

  constructor(
    private readonly baseLogger: Logger,
    private readonly message: Message,
    private readonly flowId: string,
  ) {}

  get log(): Logger {
    if (this.logger === undefined) {
      this.logger = this.baseLogger.child({ messageId: this.message.id, correlationId: this.message.correlationId, flow: this.flowId });
      // A script logging the token it got (a common slip while debugging) must not put it in the log.
      scrubLinesOf(this.logger, (line) => withoutSecrets(line, this.secretSets));
    }
    return this.logger;
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { StepKind } from '../../flows/schema.ts';
import type { SecurityMaterial } from '../context.ts';
import type { FlowProblem } from '../../flows/errors.ts';
import type { Message } from '../message.ts';

/** What a step needs at deploy time: where it lives and the shared services it will call. */
export interface StepEnvironment {
  flowId: string;
  flowDir: string;
  /** flow.yaml relative to the flows dir and the step's JSON pointer, for deploy errors */
  file: string;
  pointer: string;
  parameters: Readonly<Record<string, string>>;
  securityMaterial: SecurityMaterial;
  dispatcher: Dispatcher;
  /** Notes something suspicious that does not stop the flow from deploying (`iflow check` shows it, the log has it). */
  warn(problem: FlowProblem): void;
}

/** What a step sees per message besides the message. */
export interface Execution {
  /** Child logger bound to the message; created on first use (most messages never need it). */
  readonly log: Logger;
  /** The host the message was last sent to (http steps set it): the message log's Receiver. */
  receiver?: string;
  /** How many requests the running step sent, set by an http step once it retries; the pipeline notes and clears it. */
  attempts?: number;
  /**
   * The access tokens the secure store gave this message's scripts, each with its credential's name: an http step
   * whose receiver answers 401 to one of them gets it refreshed and sends once more, as it does for its own `auth:`.
   */
  issuedTokens?: Map<string, string>;
  /**
   * The secrets this message's steps handed out or renewed, as references to sets (runtime/secrets.ts): taken out
   * of what a receiver echoes and of failure texts, and no reply header carrying one goes back to the caller.
   */
  secretSets?: ReadonlySet<string>[];
  /** The message's own set among them: tokens an http step renewed after a 401. */
  ownSecrets?: Set<string>;
}

/** Runs a step over the message, changing it in place. */
export type StepRun = (message: Message, execution: Execution) => void | Promise<void>;

export interface CompiledStep {
  name: string;
  kind: StepKind;
  run: StepRun;
  /** The receiver's host for http steps (for the message log's Receiver). */
  receiver?: string;
}

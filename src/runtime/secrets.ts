import { redactKnownEchoes } from '../security/redact.ts';
import type { Execution } from './steps/types.ts';

/**
 * The secrets a message's steps handed out or renewed (tokens, passwords, a Basic value built from one), kept on
 * its execution so that nothing the flow sends back carries them: a reply header holding one is dropped, and a
 * failure's text (a receiver's echo, another script's error) has them taken out.
 *
 * The execution keeps references to sets, not copies: each script step's own set (what its script got, on this
 * message or an earlier one, since scripts keep tokens in module variables), and the message's own set (tokens an
 * http step renewed after a 401). Nothing is allocated for a message whose steps handed out nothing.
 */

/**
 * What a script step's scripts were handed, on any message (a script may keep a token or a password in a module
 * variable and put it in a later message): the newest `max` at most, an access token until a while after it
 * expires, a password until newer ones push it out. Old tokens leave as they are renewed, so the set does not grow
 * with every renewal, nor does the search of every reply header and log line through it.
 */
export class RecentSecrets {
  /** The secrets, least recently handed out first: what the message guards (guardSecrets). */
  readonly secrets: ReadonlySet<string> = new Set<string>();
  /** Per secret, until when it is guarded (epoch ms; Infinity: until pushed out by newer ones). */
  readonly #until = new Map<string, number>();
  #prunedAt = -Infinity;

  constructor(
    private readonly max: number,
    /** How often prune() looks through every secret (it runs per message). */
    private readonly pruneEveryMs = 60_000,
  ) {}

  add(secret: string, until = Infinity, now = Date.now()): void {
    const secrets = this.secrets as Set<string>;
    // Moved to the end: the least recently handed out stay first, where the count limit takes from.
    secrets.delete(secret);
    secrets.add(secret);
    this.#until.delete(secret);
    this.#until.set(secret, Number.isNaN(until) ? Infinity : until);
    if (secrets.size > this.max) this.remove(secrets.values().next().value as string);
    this.prune(now);
  }

  /** Drops the secrets no longer worth guarding (tokens well past their expiry); at most once per `pruneEveryMs`. */
  prune(now = Date.now()): void {
    if (now - this.#prunedAt < this.pruneEveryMs) return;
    this.#prunedAt = now;
    for (const [secret, until] of this.#until) if (until <= now) this.remove(secret);
  }

  private remove(secret: string): void {
    this.#until.delete(secret);
    (this.secrets as Set<string>).delete(secret);
  }
}

/** Adds `secrets` (a step's own set, filled as it goes) to what the message must not let out. */
export function guardSecrets(execution: Execution, secrets: ReadonlySet<string>): void {
  const sets = (execution.secretSets ??= []);
  if (!sets.includes(secrets)) sets.push(secrets);
}

/** Adds one secret of the message's own (a renewed token). */
export function guardSecret(execution: Execution, secret: string): void {
  let own = execution.ownSecrets;
  if (own === undefined) {
    own = execution.ownSecrets = new Set();
    guardSecrets(execution, own);
  }
  own.add(secret);
}

/** Whether `value` holds one of the secrets: contains one of 4 characters or more, or is one, however short. */
export function holdsSecret(value: string, sets: readonly ReadonlySet<string>[]): boolean {
  for (const secrets of sets) {
    if (secrets.has(value)) return true;
    for (const secret of secrets) if (secret.length >= 4 && value.includes(secret)) return true;
  }
  return false;
}

/** `text` with every secret of `sets` replaced by [Redacted], in every form a server may echo it (redactKnownEchoes). */
export function withoutSecrets(text: string, sets: readonly ReadonlySet<string>[] | undefined): string {
  if (sets === undefined) return text;
  let out = text;
  for (const secrets of sets) out = redactKnownEchoes(out, secrets);
  return out;
}

import type { FastifyInstance } from 'fastify';

/** The slice of a pino logger a ThrottledWarning writes to. */
export interface WarningLogger {
  warn(obj: object, msg: string): void;
}

/** At most this many distinct values of a field are listed in a summary line. */
const MAX_LISTED = 5;

export interface ThrottledWarningOptions {
  message: string;
  summary: string;
  /** Default 10 s. */
  intervalMs?: number;
  listed?: Readonly<Record<string, string>>;
}

/**
 * A warning for something that can happen many times a second (refused logins, a flood of guesses): the first
 * occurrence is logged at once with its details; while more follow, one summary line every `intervalMs` counts
 * them and lists the distinct values (up to five) of the fields `listed` names, each under the name it maps
 * to (`{ remoteAddress: 'remoteAddresses' }`). A quiet interval ends the
 * summaries, so the next occurrence is logged at once again. So a flood costs the log two lines per interval.
 */
export class ThrottledWarning {
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private readonly seen = new Map<string, Set<string>>();
  private readonly intervalMs: number;

  constructor(
    private readonly log: WarningLogger,
    private readonly options: ThrottledWarningOptions,
  ) {
    this.intervalMs = options.intervalMs ?? 10_000;
  }

  /** Whether an interval is running: occurrences now are counted for its summary, not logged one by one. */
  get summarizing(): boolean {
    return this.timer !== undefined;
  }

  /** One occurrence, with the fields of its log line. */
  note(fields: Record<string, string | number | undefined>): void {
    if (this.timer === undefined) {
      this.log.warn(fields, this.options.message);
      this.arm();
      return;
    }
    this.count++;
    for (const name in this.options.listed) {
      const value = fields[name];
      if (value === undefined) continue;
      const listedAs = this.options.listed[name];
      let values = this.seen.get(listedAs);
      if (!values) this.seen.set(listedAs, (values = new Set()));
      if (values.size < MAX_LISTED) values.add(String(value));
    }
  }

  /**
   * The trouble is over (and the caller says so in a line of its own): the summaries stop without the count not
   * yet logged, and the next occurrence is logged at once again. Returns that count.
   */
  reset(): number {
    clearTimeout(this.timer);
    this.timer = undefined;
    const unlogged = this.count;
    this.count = 0;
    this.seen.clear();
    return unlogged;
  }

  /** Stops the timer (the app is closing); a count not yet logged is logged now. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.report();
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.report()) this.arm();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Logs the summary of the interval; false when there was nothing to report. */
  private report(): boolean {
    if (this.count === 0) return false;
    const listed = Object.fromEntries([...this.seen].map(([listedAs, values]) => [listedAs, [...values]]));
    this.log.warn({ count: this.count, seconds: this.intervalMs / 1000, ...listed }, this.options.summary);
    this.count = 0;
    this.seen.clear();
    return true;
  }
}

/** A ThrottledWarning closed with `app` (an onClose hook, registered now): its last count is logged then. */
export function throttledWarning(app: FastifyInstance, log: WarningLogger, options: ThrottledWarningOptions): ThrottledWarning {
  const warning = new ThrottledWarning(log, options);
  app.addHook('onClose', (_app, done) => {
    warning.close();
    done();
  });
  return warning;
}

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds; flows call HTTP receivers whose default timeout is 60 s. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

let processRegistry: Registry | undefined;

/**
 * Process metrics (CPU, memory, event loop lag, GC…) describe the process, not an app instance, and
 * collectDefaultMetrics installs observers that are never removed: collect them once per process, in a registry
 * of their own (never prom-client's global one), and add them to every instance's output.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** iflow's Prometheus metrics; each app instance has its own registry, so several instances in one process never clash. */
export class IflowMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  readonly messagesTotal: Counter<'flow' | 'status'>;
  readonly messageDuration: Histogram<'flow'>;

  constructor() {
    this.messagesTotal = new Counter({
      name: 'iflow_messages_total',
      help: 'Messages processed, by integration flow and final status',
      labelNames: ['flow', 'status'] as const,
      registers: [this.registry],
    });
    this.messageDuration = new Histogram({
      name: 'iflow_message_duration_seconds',
      help: 'Time from receiving a message to its final status, by integration flow',
      labelNames: ['flow'] as const,
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
  }

  /** Labelled children by flow and status: prom-client's label lookup is too slow for every message. */
  private readonly children = new Map<string, { count: { inc(): void }; duration: { observe(value: number): void } }>();

  /** Counts one finished message and records how long it took. */
  observeMessage(flow: string, status: string, durationMs: number): void {
    const key = `${flow}\u0000${status}`;
    let child = this.children.get(key);
    if (!child) {
      child = { count: this.messagesTotal.labels({ flow, status }), duration: this.messageDuration.labels({ flow }) };
      this.children.set(key, child);
    }
    child.count.inc();
    if (Number.isFinite(durationMs) && durationMs >= 0) child.duration.observe(durationMs / 1000);
  }

  /** The Prometheus text exposition of the process metrics and this instance's metrics. */
  async render(): Promise<string> {
    const [process, own] = await Promise.all([processMetrics().metrics(), this.registry.metrics()]);
    return `${process.trimEnd()}\n\n${own}`;
  }
}

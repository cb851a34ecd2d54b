import { Registry, collectDefaultMetrics } from 'prom-client';

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

/** What prom-client's registry reads from a metric when it renders the exposition text. */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * One flow's counts, kept as plain numbers: the hot path adds to them with no label hashing or
 * validation (prom-client's own observe() does both on every call), and the registry reads them
 * only when /metrics is scraped.
 */
class FlowCounts {
  readonly byStatus = new Map<string, number>();
  readonly buckets = new Array<number>(DURATION_BUCKETS.length).fill(0);
  count = 0;
  sum = 0;
  /** Messages started and not finished yet: a receiver that hangs shows here long before its timeout. */
  inFlight = 0;

  add(status: string, seconds: number): void {
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (!(seconds >= 0 && Number.isFinite(seconds))) return;
    this.count += 1;
    this.sum += seconds;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]) {
        this.buckets[i] += 1;
        break;
      }
    }
  }
}

/** A metric registered with prom-client's Registry that renders from `values()` at scrape time. */
function scrapedMetric(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => MetricValue[]) {
  return {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum' as const, values: values() }),
    reset() {},
  };
}

/** iflow's Prometheus metrics; each app instance has its own registry, so several instances in one process never clash. */
export class IflowMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly flows = new Map<string, FlowCounts>();

  constructor() {
    // The shapes prom-client's Counter and Histogram render: iflow_messages_total{flow,status};
    // iflow_message_duration_seconds_bucket{le,flow} (cumulative), _sum{flow}, _count{flow}.
    this.registry.registerMetric(
      scrapedMetric('iflow_messages_total', 'Messages processed, by integration flow and final status', 'counter', () =>
        [...this.flows].flatMap(([flow, counts]) => [...counts.byStatus].map(([status, value]) => ({ labels: { flow, status }, value }))),
      ) as never,
    );
    this.registry.registerMetric(
      scrapedMetric('iflow_messages_in_flight', 'Messages being processed now, by integration flow', 'gauge', () =>
        [...this.flows].map(([flow, counts]) => ({ labels: { flow }, value: counts.inFlight })),
      ) as never,
    );
    this.registry.registerMetric(
      scrapedMetric('iflow_message_duration_seconds', 'Time from receiving a message to its final status, by integration flow', 'histogram', () =>
        [...this.flows].flatMap(([flow, counts]) => {
          const values: MetricValue[] = [];
          let cumulative = 0;
          DURATION_BUCKETS.forEach((le, i) => {
            cumulative += counts.buckets[i];
            values.push({ labels: { le, flow }, value: cumulative, metricName: 'iflow_message_duration_seconds_bucket' });
          });
          values.push({ labels: { le: '+Inf', flow }, value: counts.count, metricName: 'iflow_message_duration_seconds_bucket' });
          values.push({ labels: { flow }, value: counts.sum, metricName: 'iflow_message_duration_seconds_sum' });
          values.push({ labels: { flow }, value: counts.count, metricName: 'iflow_message_duration_seconds_count' });
          return values;
        }),
      ) as never,
    );
  }

  /** Counts a message in flight until `messageFinished`, however it ends. */
  messageStarted(flow: string): void {
    this.countsOf(flow).inFlight += 1;
  }

  messageFinished(flow: string): void {
    this.countsOf(flow).inFlight -= 1;
  }

  /** Counts one finished message and records how long it took. */
  observeMessage(flow: string, status: string, durationMs: number): void {
    this.countsOf(flow).add(status, durationMs / 1000);
  }

  private countsOf(flow: string): FlowCounts {
    let counts = this.flows.get(flow);
    if (!counts) {
      counts = new FlowCounts();
      this.flows.set(flow, counts);
    }
    return counts;
  }

  /** The Prometheus text exposition of the process metrics and this instance's metrics. */
  async render(): Promise<string> {
    const [process, own] = await Promise.all([processMetrics().metrics(), this.registry.metrics()]);
    return `${process.trimEnd()}\n\n${own}`;
  }
}

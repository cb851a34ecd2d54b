/**
 * `npm run bench:alloc`: the bytes iflow and the raw baseline allocate per request, and where.
 *
 * Starts the same three processes as bench/run.ts (receiver, iflow serving bench/flows/passthrough with message logs
 * and JSON logs on, raw passthrough), warms each server up, then sends it a fixed number of requests under V8's
 * sampling heap profiler with collected objects included, so the profile counts every allocation, the garbage too.
 * Prints KB allocated per answered request for both, their ratio and each side's costliest allocation sites.
 *
 * The main thread's heap only: iflow's message-log writer thread has an isolate of its own, not sampled here.
 * Bytes allocated per request hardly depend on the machine's speed or its other tenants (repeated runs agree within
 * about 1 %), where req/s and CPU time swing: a change to the hot path shows here before it can be resolved in
 * throughput. Allocation drives the young generation's collections (the design asks the hot path to allocate little).
 *
 * Environment (all optional):
 *   BENCH_ALLOC_REQUESTS=20000  requests sampled per side
 *   BENCH_ALLOC_WARMUP=10000    requests sent to each side first, not sampled (until its code is optimized)
 *   BENCH_ALLOC_CONNECTIONS=16  connections autocannon keeps open
 *   BENCH_ALLOC_TOP=20          allocation sites listed per side (0: only the totals)
 *   BENCH_IFLOW_ROOT=<dir>      the iflow of another checkout or copy, as with npm run bench
 */
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTHORIZATION, HEADERS, PASSWORD, PAYLOAD, USER, numberFromEnv, startChild, stopChildren, stopChildrenOnSignals, type Child } from './harness.ts';
import type { SamplingHeapProfile, SamplingHeapProfileNode } from './ipc.ts';

const REQUESTS = numberFromEnv('BENCH_ALLOC_REQUESTS', 20_000, 100, 1_000_000);
const WARMUP_REQUESTS = numberFromEnv('BENCH_ALLOC_WARMUP', 10_000, 0, 1_000_000);
const CONNECTIONS = numberFromEnv('BENCH_ALLOC_CONNECTIONS', 16, 1, 1024);
const TOP = numberFromEnv('BENCH_ALLOC_TOP', 20, 0, 1000);
/** Mean bytes between samples: small against one request's allocations, so the totals are sharp. */
const SAMPLING_INTERVAL = 128;

interface Allocations {
  answered: number;
  bytes: number;
  /** Bytes allocated by each function (its own allocations, not its callees'), keyed by "name file:line". */
  bySite: Map<string, number>;
}

/** "name path:line" with node_modules/, src/ and bench/ kept as the path's start, so sites read the same on any checkout. */
function siteName(node: SamplingHeapProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(node_modules|src|bench)\//, '$1/');
  return `${functionName || '(anonymous)'} ${file || '(native)'}${file ? `:${lineNumber + 1}` : ''}`;
}

function sumBySite(profile: SamplingHeapProfile): { bytes: number; bySite: Map<string, number> } {
  const bySite = new Map<string, number>();
  let bytes = 0;
  const pending = [profile.head];
  for (let node = pending.pop(); node; node = pending.pop()) {
    if (node.selfSize > 0) {
      const site = siteName(node);
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      bytes += node.selfSize;
    }
    pending.push(...node.children);
  }
  return { bytes, bySite };
}

async function drive(server: Child, amount: number): Promise<autocannon.Result> {
  return await autocannon({ url: `${server.url}/http/bench`, method: 'POST', headers: HEADERS, body: PAYLOAD, connections: CONNECTIONS, amount, timeout: 10 });
}

async function measure(server: Child): Promise<Allocations> {
  const warmup = WARMUP_REQUESTS > 0 ? await drive(server, WARMUP_REQUESTS) : undefined;
  if (warmup && warmup['2xx'] !== WARMUP_REQUESTS) throw new Error(`${server.name} answered ${warmup['2xx']} of ${WARMUP_REQUESTS} warm-up requests with 2xx`);
  await server.request('heapSamplingStart', String(SAMPLING_INTERVAL));
  const run = await drive(server, REQUESTS);
  const profile = await server.request<SamplingHeapProfile>('heapSamplingStop');
  // Failed requests allocate too, but not what a served one does: a run with any is not a measurement.
  if (run['2xx'] !== REQUESTS) throw new Error(`${server.name} answered ${run['2xx']} of ${REQUESTS} sampled requests with 2xx (non-2xx ${run.non2xx}, errors ${run.errors})`);
  return { answered: run['2xx'], ...sumBySite(profile) };
}

const kb = (bytes: number) => (bytes / 1024).toFixed(1);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'iflow-bench-alloc-'));
  stopChildrenOnSignals(() => rmSync(work, { recursive: true, force: true }));
  try {
    const receiver = await startChild('receiver', 'receiver.ts', {});
    const receiverUrl = `${receiver.url}/orders`;
    const iflow = await startChild(
      'iflow',
      'iflow-server.ts',
      { BENCH_DATA_DIR: join(work, 'data'), BENCH_USER: USER, BENCH_PASSWORD: PASSWORD, BENCH_RECEIVER_URL: receiverUrl },
      { stdout: 'ignore' },
    );
    const raw = await startChild('raw', 'raw.ts', { BENCH_RECEIVER_URL: receiverUrl, BENCH_AUTHORIZATION: AUTHORIZATION });
    console.log(`iflow bench:alloc: node ${process.version}, ${REQUESTS} requests per side over ${CONNECTIONS} connections after ${WARMUP_REQUESTS} warm-up requests, a sample every ~${SAMPLING_INTERVAL} B`);
    const results = new Map<string, Allocations>();
    for (const server of [iflow, raw]) {
      const result = await measure(server);
      results.set(server.name, result);
      console.log(`\n${server.name}: ${kb(result.bytes / result.answered)} KB allocated per request (${result.answered} answered 2xx)`);
      const top = [...result.bySite].sort((a, b) => b[1] - a[1]).slice(0, TOP);
      for (const [site, bytes] of top) console.log(`${String(Math.round(bytes / result.answered)).padStart(8)} B  ${site}`);
    }
    const perRequest = (name: string) => results.get(name)!.bytes / results.get(name)!.answered;
    const ratio = perRequest('iflow') / perRequest('raw');
    console.log(`\niflow/raw bytes allocated per request: ${ratio.toFixed(2)}`);
    const side = (name: string) => ({ answered: results.get(name)!.answered, bytesPerRequest: Math.round(perRequest(name)) });
    console.log(`results ${JSON.stringify({ node: process.version, requests: REQUESTS, connections: CONNECTIONS, iflow: side('iflow'), raw: side('raw'), ratio })}`);
  } finally {
    await stopChildren();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

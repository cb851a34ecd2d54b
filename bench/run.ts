/**
 * `npm run bench`: iflow against a raw Fastify + undici passthrough, in one run.
 *
 * Starts three child processes on 127.0.0.1 — a stand-in receiver answering 202 (receiver.ts), iflow serving
 * bench/flows/passthrough (iflow-server.ts: script mapping + HTTP step, message logs and JSON logs on) and the raw
 * baseline (raw.ts: the same mapping function, Basic auth by string compare) — then drives each with autocannon
 * (same ~1 KB JSON order, same Basic auth header) at each connection count: a warm-up, then a measured run,
 * alternating which side goes first. Prints req/s, p50/p99 latency, the iflow/raw ratio, non-2xx counts, server
 * CPU per request and memory, and a JSON summary. Every child is stopped at the end, on error too.
 *
 * Environment (all optional):
 *   BENCH_SECONDS=8          measured seconds per side and connection count (1-60)
 *   BENCH_WARMUP=2           warm-up seconds per side before the measured slices (0-30)
 *   BENCH_SLICES=4           the measured seconds are cut in this many slices per side, run interleaved A B B A …
 *   BENCH_CONNECTIONS=1,16,64
 *   BENCH_PROFILE=<dir>      CPU-profile iflow and raw during each measured run: <dir>/<iflow|raw>-<connections>c.cpuprofile
 *                            (summarize one with: node --import tsx bench/profile-summary.ts <file>)
 *   BENCH_IFLOW_ROOT=<dir>   benchmark the iflow in another checkout/copy (its src/app.ts) instead of this one
 *   BENCH_IFLOW_MODULE=<file> … or a module exporting buildApp and loadConfig (e.g. an esbuild bundle of src/)
 *   BENCH_RATE=<req/s>       offer a fixed load instead of as much as the server takes: compares the servers' CPU
 *                            per request with less sensitivity to other processes on the machine than req/s
 *   BENCH_LOG_LEVEL=info     iflow's LOG_LEVEL (info writes one JSON line per message, as in production)
 *   BENCH_IFLOW_NODE_FLAGS="--trace-gc-nvp"  extra node flags for the iflow process only (diagnostics)
 *   IFLOW_*=…                iflow's own settings (e.g. IFLOW_MPL_FLUSH=50ms) reach the iflow process, except those the bench sets
 *   BENCH_IFLOW_LOG=<file>   keep iflow's stdout (its JSON log, and whatever those flags print) in this file; by default it
 *                            goes to a temporary file that is removed at the end
 *   BENCH_SIDE_RATE=1500     then load both servers at once, each at this many req/s, and compare the CPU time their
 *                            whole processes and their main threads spend per request (Linux only; 0 skips it): both
 *                            sides see the same machine at the same moment, so these ratios swing far less than req/s
 *                            do with the machine's speed
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { request } from 'undici';
import type { ChildStats } from './ipc.ts';
import { AUTHORIZATION, HEADERS, PASSWORD, PAYLOAD, USER, cpuUsUsed, loadTogether, mainThreadNs, numberFromEnv, startChild, stopChildren, stopChildrenOnSignals, type Child } from './harness.ts';

const TARGET_RATIO = 0.85;
/** Above this many cores used by unrelated processes during a measured run, the run is flagged as noisy. */
const NOISE_CORES = 0.15;

const SECONDS = numberFromEnv('BENCH_SECONDS', 8, 1, 60);
const WARMUP = numberFromEnv('BENCH_WARMUP', 2, 0, 30);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS || '1,16,64').split(',').map((c) => {
  const n = Number(c.trim());
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`BENCH_CONNECTIONS: "${c}" is not a connection count from 1 to 1024`);
  return n;
});
const SLICES = numberFromEnv('BENCH_SLICES', 4, 1, 120);
const RATE = numberFromEnv('BENCH_RATE', 0, 0, 100_000);
const SIDE_RATE = numberFromEnv('BENCH_SIDE_RATE', 1500, 0, 20_000);
const IFLOW_NODE_FLAGS = (process.env.BENCH_IFLOW_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
for (const flag of IFLOW_NODE_FLAGS) if (!flag.startsWith('--')) throw new Error(`BENCH_IFLOW_NODE_FLAGS: "${flag}" is not a node flag (--…)`);
const KEPT_LOG = process.env.BENCH_IFLOW_LOG ? resolve(process.env.BENCH_IFLOW_LOG) : undefined;
/** Connections per side in the side-by-side phase: enough for the fixed rate, few enough to leave the loop unsaturated. */
const SIDE_CONNECTIONS = 16;
const PROFILE_DIR = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined;
const profiles: string[] = [];

// ---------------------------------------------------------------------------------------------------------------
// Measuring

interface Measurement {
  target: 'iflow' | 'raw';
  connections: number;
  /** Measured seconds, all slices together. */
  seconds: number;
  requests: number;
  reqPerSec: number;
  /** req/s of each slice, in the order they ran: their spread shows how steady the machine was. */
  sliceReqPerSec: number[];
  latencyAvgMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Server process CPU time per request (user + system, all its threads), µs. */
  cpuPerRequestUs: number;
  /** Server process CPU time / wall time (1 = one core busy). */
  cpuCores: number;
  /**
   * The server's main thread alone (Linux /proc schedstat; undefined elsewhere): at saturation a server is bound by
   * its main thread, so what it gets of a core, next to cpuCores, shows what its other threads take beside it.
   */
  mainCores?: number;
  /** CPU cores that processes outside this benchmark used meanwhile (mean, and the worst slice); undefined off Linux. */
  otherCores?: number;
  otherCoresMax?: number;
  /** CPU cores the other server (not driven in this run) used meanwhile: its background work, which this run pays for. */
  idlePeerCores: number;
}

interface Target {
  name: 'iflow' | 'raw';
  child: Child;
  /** 2xx answers over all runs, warm-ups included (iflow: message logs expected). */
  total2xx: number;
  /** Requests sent over all runs: autocannon stops counting at the deadline, but the server finishes what is in flight. */
  totalSent: number;
  problems: number;
}

/** One autocannon run against a target (at `rate` req/s when above 0); `latencies` (ms) collects every response time when given. */
async function drive(target: Target, connections: number, seconds: number, latencies?: number[], rate = RATE): Promise<autocannon.Result> {
  const run = autocannon({ url: `${target.child.url}/http/bench`, method: 'POST', headers: HEADERS, body: PAYLOAD, connections, duration: seconds, timeout: 10, ...(rate > 0 ? { overallRate: rate } : {}) });
  if (latencies) run.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const result = await run;
  target.total2xx += result['2xx'];
  target.totalSent += result.requests.sent;
  target.problems += result.non2xx + result.errors + result.timeouts;
  return result;
}

/** Busy and total CPU time of the whole machine so far (Linux /proc/stat, in clock ticks), or undefined. */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3] + fields[4];
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

interface Slice {
  result: autocannon.Result;
  latencies: number[];
  cpuUs: number;
  /** The target's main thread's time on a CPU (ns); undefined without /proc. */
  mainNs?: number;
  wallMs: number;
  otherCores?: number;
  idlePeerCores: number;
}

/** One measured slice: the run, the target's CPU time, and how much CPU the rest of the machine took meanwhile. */
async function slice(target: Target, connections: number, seconds: number, everyone: Child[]): Promise<Slice> {
  const latencies: number[] = [];
  const before = await Promise.all(everyone.map((child) => child.request<ChildStats>('stats')));
  const machineBefore = machineCpu();
  const mainBefore = mainThreadNs(target.child.process.pid);
  const selfBefore = process.cpuUsage();
  const started = performance.now();
  const result = await drive(target, connections, seconds, latencies);
  const wallMs = performance.now() - started;
  const selfUs = process.cpuUsage(selfBefore);
  const mainAfter = mainThreadNs(target.child.process.pid);
  const machineAfter = machineCpu();
  const after = await Promise.all(everyone.map((child) => child.request<ChildStats>('stats')));
  const own = everyone.findIndex((child) => child === target.child);
  // everyone is [first server, second server, receiver]: the peer is the server not being driven.
  const peer = own === 0 ? 1 : 0;
  let otherCores: number | undefined;
  if (machineBefore && machineAfter && machineAfter.total > machineBefore.total) {
    // Machine-wide busy cores minus what the benchmark's own processes (this one included) used.
    const machineCores = ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * cpus().length;
    const ownUs = selfUs.user + selfUs.system + everyone.reduce((sum, _child, i) => sum + cpuUsUsed(before[i], after[i]), 0);
    otherCores = Math.max(0, machineCores - ownUs / 1000 / wallMs);
  }
  const mainNs = mainBefore !== undefined && mainAfter !== undefined ? mainAfter - mainBefore : undefined;
  return { result, latencies, cpuUs: cpuUsUsed(before[own], after[own]), mainNs, wallMs, otherCores, idlePeerCores: cpuUsUsed(before[peer], after[peer]) / 1000 / wallMs };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summarize(target: Target, connections: number, slices: Slice[]): Measurement {
  const latencies = Float64Array.from(slices.flatMap((s) => s.latencies)).sort();
  const seconds = slices.reduce((sum, s) => sum + s.result.duration, 0);
  const requests = slices.reduce((sum, s) => sum + s.result.requests.total, 0);
  const cpuUs = slices.reduce((sum, s) => sum + s.cpuUs, 0);
  const wallMs = slices.reduce((sum, s) => sum + s.wallMs, 0);
  const statusCodes: Record<string, number> = {};
  for (const s of slices) for (const [code, { count }] of Object.entries(s.result.statusCodeStats)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  const others = slices.map((s) => s.otherCores).filter((v): v is number => v !== undefined);
  const mainNs = slices.every((s) => s.mainNs !== undefined) ? slices.reduce((sum, s) => sum + s.mainNs!, 0) : undefined;
  return {
    target: target.name,
    connections,
    seconds,
    requests,
    reqPerSec: requests / seconds,
    sliceReqPerSec: slices.map((s) => Math.round(s.result.requests.total / s.result.duration)),
    latencyAvgMs: latencies.reduce((sum, v) => sum + v, 0) / Math.max(1, latencies.length),
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    non2xx: slices.reduce((sum, s) => sum + s.result.non2xx, 0),
    errors: slices.reduce((sum, s) => sum + s.result.errors, 0),
    timeouts: slices.reduce((sum, s) => sum + s.result.timeouts, 0),
    statusCodes,
    cpuPerRequestUs: requests > 0 ? cpuUs / requests : 0,
    cpuCores: cpuUs / 1000 / wallMs,
    mainCores: mainNs === undefined ? undefined : mainNs / 1e6 / wallMs,
    otherCores: others.length ? others.reduce((a, b) => a + b, 0) / others.length : undefined,
    otherCoresMax: others.length ? Math.max(...others) : undefined,
    idlePeerCores: slices.reduce((sum, s) => sum + s.idlePeerCores * s.wallMs, 0) / wallMs,
  };
}

/**
 * Both targets at one connection count: a warm-up each, then SLICES measured slices each, interleaved A B B A A B B A
 * (A being whoever goes first at this count), so drift in the machine's speed hits both sides alike.
 */
async function measurePair(first: Target, second: Target, connections: number, receiver: Child): Promise<[Measurement, Measurement]> {
  for (const target of [first, second]) if (WARMUP > 0) await drive(target, connections, WARMUP);
  const everyone = [first.child, second.child, receiver];
  if (PROFILE_DIR) await Promise.all([first, second].map((t) => t.child.request('profileStart')));
  const slices = new Map<Target, Slice[]>([
    [first, []],
    [second, []],
  ]);
  const seconds = SECONDS / SLICES;
  for (let i = 0; i < SLICES; i++) {
    for (const target of i % 2 === 0 ? [first, second] : [second, first]) slices.get(target)!.push(await slice(target, connections, seconds, everyone));
  }
  if (PROFILE_DIR) {
    for (const target of [first, second]) profiles.push(await target.child.request<string>('profileStop', `${target.name}-${connections}c`));
  }
  return [summarize(first, connections, slices.get(first)!), summarize(second, connections, slices.get(second)!)];
}

interface SideBySide {
  /** req/s offered to each side. */
  rate: number;
  seconds: number;
  iflowMainUsPerRequest: number;
  rawMainUsPerRequest: number;
  /** raw / iflow main-thread time per request: the throughput ratio two saturated main threads would give. */
  ratio: number;
  /** CPU time per request of all the process's threads (its message-log writer and GC helpers too). */
  iflowProcessUsPerRequest: number;
  rawProcessUsPerRequest: number;
  /** raw / iflow of those: on a machine whose cores are all busy, the throughput ratio follows this one. */
  processRatio: number;
  roundRatios: number[];
  iflowAnswered: number;
  rawAnswered: number;
}

/**
 * Both servers loaded at once, each at SIDE_RATE req/s, in SLICES rounds (which side's load starts first
 * alternates): the CPU time per answered request of each main thread, and of each whole process. Measured at the
 * same moments, both see the same machine, where the throughput runs above see whatever speed the machine had in
 * their slice. On two cores shared with the load generator and the receiver, every thread's time is taken from the
 * others, so the saturated req/s ratio follows the whole-process ratio far more closely than the main-thread one
 * (in the runs of 2026-11-27, 0.70-0.75 against 0.67-0.77 and 0.82-0.91); the main-thread ratio shows how much of
 * the difference the event loop itself carries.
 */
async function sideBySide(iflow: Target, raw: Target): Promise<SideBySide | undefined> {
  const pids = [iflow.child.process.pid, raw.child.process.pid];
  if (pids.some((pid) => mainThreadNs(pid) === undefined)) return undefined;
  const seconds = SECONDS / SLICES;
  await Promise.all([iflow, raw].map((target) => drive(target, SIDE_CONNECTIONS, Math.max(1, WARMUP), undefined, SIDE_RATE)));
  const spentUs = [0, 0];
  const processUs = [0, 0];
  const answered = [0, 0];
  const roundRatios: number[] = [];
  const targets = [iflow, raw];
  for (let round = 0; round < SLICES; round++) {
    const spent = await loadTogether(
      targets.map((target) => target.child),
      round,
      async (side) => (await drive(targets[side], SIDE_CONNECTIONS, seconds, undefined, SIDE_RATE))['2xx'],
    );
    const perRequest = spent.map((s, side) => {
      spentUs[side] += s.mainUs!;
      processUs[side] += s.processUs;
      answered[side] += s.answered;
      return s.mainUs! / Math.max(1, s.answered);
    });
    roundRatios.push(perRequest[1] / perRequest[0]);
  }
  const iflowUs = spentUs[0] / Math.max(1, answered[0]);
  const rawUs = spentUs[1] / Math.max(1, answered[1]);
  const iflowProcessUs = processUs[0] / Math.max(1, answered[0]);
  const rawProcessUs = processUs[1] / Math.max(1, answered[1]);
  return {
    rate: SIDE_RATE,
    seconds: SECONDS,
    iflowMainUsPerRequest: iflowUs,
    rawMainUsPerRequest: rawUs,
    ratio: rawUs / iflowUs,
    iflowProcessUsPerRequest: iflowProcessUs,
    rawProcessUsPerRequest: rawProcessUs,
    processRatio: rawProcessUs / iflowProcessUs,
    roundRatios,
    iflowAnswered: answered[0],
    rawAnswered: answered[1],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Checks and output

interface LastRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
}

async function sendOnce(target: Target, receiver: Child): Promise<{ status: number; messageId?: string; received?: LastRequest }> {
  const response = await request(`${target.child.url}/http/bench`, { method: 'POST', headers: HEADERS, body: PAYLOAD, headersTimeout: 10_000, bodyTimeout: 10_000 });
  await response.body.dump();
  if (response.statusCode >= 200 && response.statusCode < 300) target.total2xx += 1;
  target.totalSent += 1;
  const messageId = response.headers['sap_messageprocessinglogid'];
  return { status: response.statusCode, messageId: typeof messageId === 'string' ? messageId : undefined, received: await receiver.request<LastRequest | undefined>('last') };
}

function headerValues(rawHeaders: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === name) values.push(rawHeaders[i + 1]);
  return values;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const fixed = (value: number, digits: number) => value.toFixed(digits);

function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ')).join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'iflow-bench-'));
  workDir = work;
  const logFile = KEPT_LOG ?? join(work, 'iflow.log');
  const logFd = openSync(logFile, 'w');
  const notes: string[] = [];
  try {
    console.log(
      `iflow bench: node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model.trim() ?? '?'}), payload ${PAYLOAD.length} B, ` +
        `per side and connection count ${WARMUP} s warm-up + ${SECONDS} s measured in ${SLICES} interleaved slices, connections ${CONNECTIONS.join('/')}${RATE > 0 ? `, offered load fixed at ${RATE} req/s` : ''}`,
    );
    const receiver = await startChild('receiver', 'receiver.ts', {});
    const receiverUrl = `${receiver.url}/orders`;
    const [iflowChild, rawChild] = await Promise.all([
      startChild(
        'iflow',
        'iflow-server.ts',
        { BENCH_DATA_DIR: join(work, 'data'), BENCH_USER: USER, BENCH_PASSWORD: PASSWORD, BENCH_RECEIVER_URL: receiverUrl, BENCH_PROFILE: PROFILE_DIR ?? '' },
        { stdout: logFd, execArgv: IFLOW_NODE_FLAGS },
      ),
      startChild('raw', 'raw.ts', { BENCH_RECEIVER_URL: receiverUrl, BENCH_AUTHORIZATION: AUTHORIZATION, BENCH_PROFILE: PROFILE_DIR ?? '' }),
    ]);
    const iflow: Target = { name: 'iflow', child: iflowChild, total2xx: 0, totalSent: 0, problems: 0 };
    const raw: Target = { name: 'raw', child: rawChild, total2xx: 0, totalSent: 0, problems: 0 };
    console.log(`receiver ${receiver.url}, iflow ${iflow.child.url}${process.env.BENCH_IFLOW_ROOT ? ` (from ${process.env.BENCH_IFLOW_ROOT})` : ''}, raw ${raw.child.url}`);

    // Both sides must answer 2xx and send the receiver the same mapped body before anything is measured.
    const iflowOnce = await sendOnce(iflow, receiver);
    const rawOnce = await sendOnce(raw, receiver);
    for (const [name, once] of [['iflow', iflowOnce], ['raw', rawOnce]] as const) {
      if (once.status < 200 || once.status >= 300) throw new Error(`${name} answered ${once.status} to the check request; not benchmarking`);
    }
    if (!iflowOnce.messageId) notes.push('iflow did not answer with a SAP_MessageProcessingLogID header');
    if (iflowOnce.received?.body !== rawOnce.received?.body) {
      notes.push(`iflow and raw sent different bodies to the receiver:\n  iflow ${iflowOnce.received?.body}\n  raw   ${rawOnce.received?.body}`);
    }
    const iflowTypes = headerValues(iflowOnce.received?.rawHeaders ?? [], 'content-type');
    if (iflowTypes.length !== 1) notes.push(`iflow sent the receiver ${iflowTypes.length} Content-Type headers: ${JSON.stringify(iflowTypes)}`);

    const measurements: Measurement[] = [];
    for (const [index, connections] of CONNECTIONS.entries()) {
      // Alternate who goes first, so neither side always gets the fresher machine.
      const [first, second] = index % 2 === 0 ? [iflow, raw] : [raw, iflow];
      process.stdout.write(`  ${String(connections).padStart(3)} connections: `);
      const pair = await measurePair(first, second, connections, receiver);
      measurements.push(...pair);
      const line = (m: Measurement) =>
        `${m.target} ${fixed(m.reqPerSec, 0)} req/s (slices ${m.sliceReqPerSec.join(' ')}), p50 ${fixed(m.latencyP50Ms, 1)} ms, p99 ${fixed(m.latencyP99Ms, 1)} ms, ` +
        `server ${fixed(m.cpuCores, 2)} cores${m.mainCores === undefined ? '' : ` (main thread ${fixed(m.mainCores, 2)})`}, idle peer ${fixed(m.idlePeerCores, 2)} cores${m.otherCores === undefined ? '' : `, others ${fixed(m.otherCores, 2)} cores`}${m.non2xx + m.errors + m.timeouts > 0 ? `  !! non-2xx ${m.non2xx}, errors ${m.errors}, timeouts ${m.timeouts}` : ''}`;
      console.log(`${line(pair[0])}\n                   ${line(pair[1])}`);
    }

    let side: SideBySide | undefined;
    if (SIDE_RATE > 0) {
      process.stdout.write(`  side by side, ${SIDE_RATE} req/s each: `);
      side = await sideBySide(iflow, raw);
      if (!side) console.log('skipped (no /proc to read main-thread CPU time from)');
      else {
        console.log(
          `main thread per request: iflow ${fixed(side.iflowMainUsPerRequest, 1)} µs, raw ${fixed(side.rawMainUsPerRequest, 1)} µs; ` +
            `raw/iflow ${fixed(side.ratio, 2)} (rounds ${side.roundRatios.map((r) => fixed(r, 2)).join(' ')}); ` +
            `all threads: iflow ${fixed(side.iflowProcessUsPerRequest, 1)} µs, raw ${fixed(side.rawProcessUsPerRequest, 1)} µs, raw/iflow ${fixed(side.processRatio, 2)}`,
        );
        const offered = Math.round(SIDE_RATE * side.seconds);
        if (side.iflowAnswered < offered * 0.95 || side.rawAnswered < offered * 0.95) {
          notes.push(`side by side: the servers answered ${side.iflowAnswered} (iflow) and ${side.rawAnswered} (raw) of ~${offered} offered; the machine could not carry the rate, lower BENCH_SIDE_RATE`);
        }
      }
    }

    // Message logs on: every 2xx iflow answered must have become a record in the store.
    for (let waited = 0; waited < 5000 && (await iflow.child.request<number>('pendingMessageLogs')) > 0; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const countResponse = await request(`${iflow.child.url}/api/v1/MessageProcessingLogs/$count`, { headers: { authorization: AUTHORIZATION } });
    const storedLogs = Number(await countResponse.body.text());
    const logsComplete = storedLogs >= iflow.total2xx && storedLogs <= iflow.totalSent;
    if (!logsComplete) notes.push(`message processing logs stored: ${storedLogs}, but iflow answered ${iflow.total2xx} × 2xx of ${iflow.totalSent} requests sent`);
    const [iflowStats, rawStats] = await Promise.all([iflow.child.request<ChildStats>('stats'), raw.child.request<ChildStats>('stats')]);
    const logBytes = statSync(logFile).size;
    // JSON lines only: node flags (BENCH_IFLOW_NODE_FLAGS) may print their own lines into the same output.
    const logLines = readFileSync(logFile, 'utf8').split('\n').filter((line) => line.startsWith('{')).length;

    const byKey = new Map(measurements.map((m) => [`${m.target}/${m.connections}`, m]));
    const rows = [['connections', 'iflow req/s', 'p50 ms', 'p99 ms', 'cpu µs/req', 'raw req/s', 'p50 ms', 'p99 ms', 'cpu µs/req', 'iflow/raw', 'slice range', 'non-2xx iflow/raw']];
    const ratios: Record<string, number> = {};
    for (const connections of CONNECTIONS) {
      const a = byKey.get(`iflow/${connections}`)!;
      const b = byKey.get(`raw/${connections}`)!;
      const ratio = a.reqPerSec / b.reqPerSec;
      ratios[connections] = Math.round(ratio * 1000) / 1000;
      // The ratio of each slice with its neighbour of the other side: how far one run's noise can move it.
      const sliceRatios = a.sliceReqPerSec.map((r, i) => r / b.sliceReqPerSec[i]);
      const bad = (m: Measurement) => m.non2xx + m.errors + m.timeouts;
      rows.push([
        String(connections),
        fixed(a.reqPerSec, 0),
        fixed(a.latencyP50Ms, 2),
        fixed(a.latencyP99Ms, 2),
        fixed(a.cpuPerRequestUs, 0),
        fixed(b.reqPerSec, 0),
        fixed(b.latencyP50Ms, 2),
        fixed(b.latencyP99Ms, 2),
        fixed(b.cpuPerRequestUs, 0),
        fixed(ratio, 2),
        `${fixed(Math.min(...sliceRatios), 2)}–${fixed(Math.max(...sliceRatios), 2)}`,
        `${bad(a)}/${bad(b)}${bad(a) + bad(b) > 0 ? ' !!' : ''}`,
      ]);
    }
    console.log(`\n${table(rows)}\n`);
    const top = Math.max(...CONNECTIONS);
    const topRatio = ratios[top];
    console.log(`iflow/raw at ${top} connections: ${fixed(topRatio, 2)} (target ≥ ${TARGET_RATIO}): ${topRatio >= TARGET_RATIO ? 'met' : 'NOT MET'}`);
    if (side) {
      console.log(
        `cost ratio side by side at ${side.rate} req/s each (raw µs/iflow µs per request): whole process ${fixed(side.processRatio, 2)}, main thread ${fixed(side.ratio, 2)}`,
      );
    }
    console.log(`iflow after the run: RSS ${mb(iflowStats.rss)}, heap ${mb(iflowStats.heapUsed)}; raw: RSS ${mb(rawStats.rss)}`);
    console.log(`iflow message processing logs stored: ${storedLogs} (requests sent ${iflow.totalSent}, 2xx counted ${iflow.total2xx}); JSON log so far (pino writes it asynchronously): ${logLines} lines, ${mb(logBytes)}`);
    const noisiest = Math.max(...measurements.map((m) => m.otherCoresMax ?? 0));
    if (noisiest > NOISE_CORES) notes.push(`other processes used up to ${fixed(noisiest, 2)} CPU cores during measured runs: figures are noisy, run again on a quiet machine`);
    const problems = iflow.problems + raw.problems;
    if (problems > 0) notes.push(`non-2xx answers, errors or timeouts: iflow ${iflow.problems}, raw ${raw.problems} (warm-ups included)`);
    for (const note of notes) console.log(`!! ${note}`);

    const summary = {
      node: process.version,
      cpus: cpus().length,
      payloadBytes: PAYLOAD.length,
      warmupSeconds: WARMUP,
      seconds: SECONDS,
      slices: SLICES,
      ratios,
      targetRatio: TARGET_RATIO,
      sideBySide: side,
      iflowRssBytes: iflowStats.rss,
      iflowHeapUsedBytes: iflowStats.heapUsed,
      rawRssBytes: rawStats.rss,
      messageLogsStored: storedLogs,
      measurements,
      notes,
    };
    console.log(`\nresults ${JSON.stringify(summary)}`);
    return problems > 0 || !logsComplete ? 1 : 0;
  } finally {
    await stopChildren();
    closeSync(logFd);
    rmSync(work, { recursive: true, force: true });
    for (const file of profiles) console.log(`CPU profile: ${file}`);
    if (KEPT_LOG) console.log(`iflow's output: ${KEPT_LOG}`);
  }
}

/** The run's temporary directory (iflow's data dir and log), removed at the end however the run ends. */
let workDir: string | undefined;

stopChildrenOnSignals(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: Error) => {
    console.error(`bench failed: ${err.stack ?? err.message}`);
    await stopChildren();
    process.exitCode = 1;
  },
);

/**
 * `npm run bench:compare`: the CPU cost per message of two iflow builds, A and B, measured side by side.
 *
 * Throughput ratios on a shared 2-core machine swing by ±0.1 from run to run (see README, "Benchmark"). CPU time
 * per request of two servers loaded at the same fixed rate, at the same moments, is steadier, with one catch: a
 * process keeps a bias of its own for its lifetime (where the scheduler, the allocator and the caches put it), so
 * one pair of processes gave an A/A ratio (the same build on both sides) anywhere from 0.93 to 1.03 while its
 * rounds agreed within a few percent. So this runs BENCH_PAIRS pairs of fresh processes and pools them (pooled
 * A/A runs: 1.008, 1.047, 0.957, 0.980, so one run shows a change of ~8 % or more; repeat for less): each pair
 * is the stand-in receiver and two iflow processes (bench/iflow-server.ts serving bench/flows/passthrough, message
 * logs and JSON logs on), A and B, each from its own checkout or copy and with its own settings, warmed up, then
 * loaded at BENCH_RATE req/s each for BENCH_ROUNDS rounds (which side's load starts first alternates). It prints,
 * per answered request, each side's CPU time (all threads), its main thread's share and the rest (the
 * message-log writer thread, V8's GC helpers, libuv's pool), and B / A, per pair and pooled.
 *
 * Environment (all optional):
 *   BENCH_A_ROOT, BENCH_B_ROOT=<dir>   the iflow each side runs (a checkout or copy holding src/app.ts); default: this one
 *   BENCH_A_ENV, BENCH_B_ENV="NAME=value …"  environment of that side only: iflow settings (IFLOW_MPL_FLUSH=50ms) or
 *                                      the switches of a prototype copy
 *   BENCH_RATE=2500      req/s offered to each side, over 16 connections each
 *   BENCH_PAIRS=4        pairs of fresh processes (1-50)
 *   BENCH_ROUNDS=3       rounds per pair (1-100)
 *   BENCH_SECONDS=10     seconds per round (1-120)
 *   BENCH_WARMUP=3       warm-up seconds per pair (0-60)
 */
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { HEADERS, PASSWORD, PAYLOAD, USER, loadTogether, numberFromEnv, startChild, stopChildren, stopChildrenOnSignals, type Child, type Spent } from './harness.ts';

const RATE = numberFromEnv('BENCH_RATE', 2500, 1, 50_000);
const SECONDS = numberFromEnv('BENCH_SECONDS', 10, 1, 120);
const ROUNDS = numberFromEnv('BENCH_ROUNDS', 3, 1, 100);
const PAIRS = numberFromEnv('BENCH_PAIRS', 4, 1, 50);
const WARMUP = numberFromEnv('BENCH_WARMUP', 3, 0, 60);
const CONNECTIONS = 16;

/** "NAME=value NAME2=value2" → an environment; anything else is refused with the variable's name. */
function environment(variable: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of (process.env[variable] ?? '').split(/\s+/).filter(Boolean)) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
    if (!match) throw new Error(`${variable}: "${pair}" is not NAME=value`);
    env[match[1]] = match[2];
  }
  return env;
}

interface Side {
  child: Child;
  /** Non-2xx answers, errors and timeouts over all runs. */
  problems: number;
}

/** A round in which a side answered less than this share of the offered load measured an overloaded machine. */
const CARRIED_SHARE = 0.95;
/** The lowest share of the offered load a side answered in any measured round, per side. */
const carried = [1, 1];

async function load(side: Side, seconds: number): Promise<number> {
  const result = await autocannon({ url: `${side.child.url}/http/bench`, method: 'POST', headers: HEADERS, body: PAYLOAD, connections: CONNECTIONS, duration: seconds, timeout: 10, overallRate: RATE });
  side.problems += result.non2xx + result.errors + result.timeouts;
  return result['2xx'];
}

function perRequest(spent: Spent[]): { total: number; main?: number; other?: number } {
  const answered = Math.max(1, spent.reduce((sum, s) => sum + s.answered, 0));
  const total = spent.reduce((sum, s) => sum + s.processUs, 0) / answered;
  if (spent.some((s) => s.mainUs === undefined)) return { total };
  const main = spent.reduce((sum, s) => sum + s.mainUs!, 0) / answered;
  return { total, main, other: total - main };
}

const fixed = (value: number | undefined, digits: number) => (value === undefined ? '?' : value.toFixed(digits));
const describe = (cost: ReturnType<typeof perRequest>) => `${fixed(cost.total, 1)} µs (main ${fixed(cost.main, 1)}, other threads ${fixed(cost.other, 1)})`;

const SETTINGS = (['A', 'B'] as const).map((name) => ({
  name,
  root: resolve(process.env[`BENCH_${name}_ROOT`] || join(import.meta.dirname, '..')),
  env: environment(`BENCH_${name}_ENV`),
}));

// Created once the settings are read, so a bad setting leaves nothing behind.
const work = mkdtempSync(join(tmpdir(), 'iflow-compare-'));
stopChildrenOnSignals(() => rmSync(work, { recursive: true, force: true }));

/** Fresh processes (receiver, A, B), warmed up, then ROUNDS rounds; every child is stopped before it returns. */
async function measurePair(pair: number): Promise<{ spent: Spent[][]; problems: number[] }> {
  const logFds: number[] = [];
  try {
    const receiver = await startChild('receiver', 'receiver.ts', {});
    // Started one after the other, A first in odd pairs and B first in even ones, so whatever the start order does
    // to where a process lands is shared by both sides.
    const sides: Side[] = [];
    for (const i of pair % 2 === 1 ? [0, 1] : [1, 0]) {
      const { name, root, env } = SETTINGS[i];
      const logFd = openSync(join(work, `${name}-${pair}.log`), 'w');
      logFds.push(logFd);
      const child = await startChild(
        `iflow ${name}`,
        'iflow-server.ts',
        { ...env, BENCH_IFLOW_ROOT: root, BENCH_DATA_DIR: join(work, `data-${name}-${pair}`), BENCH_USER: USER, BENCH_PASSWORD: PASSWORD, BENCH_RECEIVER_URL: `${receiver.url}/orders` },
        { stdout: logFd },
      );
      sides[i] = { child, problems: 0 };
    }
    if (WARMUP > 0) await Promise.all(sides.map((side) => load(side, WARMUP)));
    const spent: Spent[][] = [[], []];
    const ratios: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = await loadTogether(
        sides.map((side) => side.child),
        i,
        (side) => load(sides[side], SECONDS),
      );
      spent[0].push(a);
      spent[1].push(b);
      [a, b].forEach((side, s) => (carried[s] = Math.min(carried[s], side.answered / (RATE * SECONDS))));
      ratios.push(fixed(perRequest([b]).total / perRequest([a]).total, 3));
    }
    const [costA, costB] = spent.map(perRequest);
    console.log(`  pair ${pair}: A ${describe(costA)} · B ${describe(costB)} · B/A ${fixed(costB.total / costA.total, 3)} (rounds ${ratios.join(' ')})`);
    return { spent, problems: sides.map((side) => side.problems) };
  } finally {
    await stopChildren();
    for (const fd of logFds) closeSync(fd);
  }
}

async function main(): Promise<number> {
  try {
    console.log(
      `iflow compare: node ${process.version}, ${cpus().length} CPU(s), each side at ${RATE} req/s over ${CONNECTIONS} connections; ` +
        `${PAIRS} pairs of fresh processes, each ${WARMUP} s warm-up + ${ROUNDS} rounds of ${SECONDS} s`,
    );
    for (const side of SETTINGS) console.log(`  ${side.name}: ${side.root}${Object.keys(side.env).length ? ` with ${Object.entries(side.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`);
    const spent: Spent[][] = [[], []];
    const pairRatios: number[] = [];
    const problems = [0, 0];
    for (let pair = 1; pair <= PAIRS; pair++) {
      const result = await measurePair(pair);
      for (const side of [0, 1]) {
        spent[side].push(...result.spent[side]);
        problems[side] += result.problems[side];
      }
      pairRatios.push(perRequest(result.spent[1]).total / perRequest(result.spent[0]).total);
    }
    const [costA, costB] = spent.map(perRequest);
    const ratio = costB.total / costA.total;
    console.log(`\nper answered request: A ${describe(costA)}\n                      B ${describe(costB)}`);
    console.log(
      `B/A ${fixed(ratio, 3)} (pairs ${fixed(Math.min(...pairRatios), 3)}–${fixed(Math.max(...pairRatios), 3)})` +
        (costA.main !== undefined && costB.main !== undefined ? `; main thread B/A ${fixed(costB.main / costA.main, 3)}` : ''),
    );
    if (carried.some((share) => share < CARRIED_SHARE)) {
      console.log(
        `!! the machine did not carry ${RATE} req/s a side: in some rounds A answered only ${Math.round(carried[0] * 100)} %, B ${Math.round(carried[1] * 100)} % ` +
          'of the offered load, so these figures measure an overloaded machine; run again with a lower BENCH_RATE',
      );
    }
    if (problems.some((n) => n > 0)) console.log(`!! non-2xx answers, errors or timeouts: A ${problems[0]}, B ${problems[1]} (warm-ups included)`);
    const [a, b] = SETTINGS.map((side, i) => ({ root: side.root, env: side.env, ...(i === 0 ? costA : costB) }));
    console.log(`\nresults ${JSON.stringify({ node: process.version, rate: RATE, seconds: SECONDS, rounds: ROUNDS, pairs: PAIRS, a, b, ratio, pairRatios, problems, carried })}`);
    return problems.some((n) => n > 0) ? 1 : 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: Error) => {
    console.error(`bench:compare failed: ${err.stack ?? err.message}`);
    await stopChildren();
    process.exitCode = 1;
  },
);

/**
 * Smoke tests of the benchmark tools (`npm run bench`, `npm run bench:compare`, `npm run bench:alloc`): a run of a second or
 * two each, so a change that breaks them (a child that no longer starts, a results line that no longer
 * parses, message logs that stop being stored) fails here rather than on the next person who measures.
 * They check what the tools report, never how fast anything was.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The caller's environment without bench and iflow settings: a shell's BENCH_IFLOW_ROOT must not change what is tested. */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BENCH_') && !name.startsWith('IFLOW_')));

/**
 * Runs a bench script as `npm run` would (node --import tsx) with only `env` as its settings, expects it to
 * exit 0, and returns its output and the JSON of its last `results` line.
 */
function benchResults(script: string, env: Record<string, string>): Promise<{ stdout: string; results: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script],
      { cwd: root, env: { ...baseEnv, ...env }, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        try {
          assert.equal(err ? (typeof err.code === 'number' ? err.code : 1) : 0, 0, `${stdout}\n${stderr}`);
          const line = /^results (.*)$/m.exec(stdout);
          assert.ok(line, `no results line in:\n${stdout}`);
          resolve({ stdout, results: JSON.parse(line[1]) as Record<string, unknown> });
        } catch (failure) {
          reject(failure as Error);
        }
      },
    );
  });
}

/** Notes about the machine being busy (other tests run beside these) say nothing about the tool. */
const MACHINE_NOTES = /other processes used|could not carry the rate/;

test('npm run bench: measures iflow and raw, and finds every message iflow answered in its message processing logs', async () => {
  const { stdout, results: reported } = await benchResults('bench/run.ts', {
    BENCH_CONNECTIONS: '4',
    BENCH_SECONDS: '1',
    BENCH_WARMUP: '0',
    BENCH_SLICES: '1',
    BENCH_SIDE_RATE: '200',
  });
  const results = reported as {
    ratios: Record<string, number>;
    measurements: { target: string; requests: number; non2xx: number; errors: number; statusCodes: Record<string, number>; cpuCores: number; mainCores?: number }[];
    messageLogsStored: number;
    sideBySide?: { iflowMainUsPerRequest: number; rawMainUsPerRequest: number };
    notes: string[];
  };
  assert.ok(results.ratios['4'] > 0, JSON.stringify(results.ratios));
  assert.deepEqual(results.measurements.map((m) => m.target).sort(), ['iflow', 'raw']);
  for (const m of results.measurements) {
    assert.ok(m.requests > 0, `${m.target} answered nothing`);
    assert.deepEqual(Object.keys(m.statusCodes), ['202'], `${m.target} answered ${JSON.stringify(m.statusCodes)}`);
    assert.equal(m.errors, 0);
    if (process.platform === 'linux') {
      // The main thread is one of the server's threads: its share of a core is there, and within the process's.
      assert.ok(m.mainCores !== undefined && m.mainCores > 0 && m.mainCores <= m.cpuCores + 0.05, `${m.target}: main ${m.mainCores}, process ${m.cpuCores}`);
    }
  }
  const iflow = results.measurements.find((m) => m.target === 'iflow')!;
  assert.ok(results.messageLogsStored >= iflow.requests, `${results.messageLogsStored} message logs for ${iflow.requests} measured requests`);
  if (process.platform === 'linux') {
    // Side by side reads each main thread's CPU time from /proc: skipped (undefined) elsewhere.
    assert.ok(results.sideBySide && results.sideBySide.iflowMainUsPerRequest > 0 && results.sideBySide.rawMainUsPerRequest > 0, JSON.stringify(results.sideBySide));
  }
  assert.deepEqual(results.notes.filter((note) => !MACHINE_NOTES.test(note)), []);
  assert.match(stdout, /iflow\/raw at 4 connections: \d+\.\d\d \(target ≥ 0\.85\)/);
});

test('npm run bench:compare: prints both sides CPU time per request and their ratio', async () => {
  const { stdout, results: reported } = await benchResults('bench/compare.ts', {
    BENCH_PAIRS: '1',
    BENCH_ROUNDS: '1',
    BENCH_SECONDS: '1',
    BENCH_WARMUP: '0',
    BENCH_RATE: '200',
    BENCH_B_ENV: 'IFLOW_MPL_FLUSH=50ms',
  });
  const results = reported as {
    a: { total: number; env: Record<string, string> };
    b: { total: number; env: Record<string, string> };
    ratio: number;
    problems: number[];
  };
  assert.ok(results.a.total > 0 && results.b.total > 0, JSON.stringify(results));
  assert.ok(Math.abs(results.ratio - results.b.total / results.a.total) < 1e-9);
  assert.deepEqual(results.a.env, {});
  assert.deepEqual(results.b.env, { IFLOW_MPL_FLUSH: '50ms' });
  assert.deepEqual(results.problems, [0, 0]);
  assert.match(stdout, /^B\/A \d+\.\d{3} /m);
});

test('npm run bench:alloc: prints the bytes iflow and raw allocate per request, their ratio and where', async () => {
  const { stdout, results: reported } = await benchResults('bench/allocations.ts', { BENCH_ALLOC_REQUESTS: '300', BENCH_ALLOC_WARMUP: '100', BENCH_ALLOC_TOP: '3' });
  const results = reported as { iflow: { answered: number; bytesPerRequest: number }; raw: { answered: number; bytesPerRequest: number }; ratio: number };
  assert.equal(results.iflow.answered, 300);
  assert.equal(results.raw.answered, 300);
  // A request allocates kilobytes on either side (headers, bodies, promises): a profile that sampled nothing is broken.
  assert.ok(results.iflow.bytesPerRequest > 1000 && results.raw.bytesPerRequest > 1000, JSON.stringify(results));
  assert.ok(Math.abs(results.ratio - results.iflow.bytesPerRequest / results.raw.bytesPerRequest) < 0.01, JSON.stringify(results));
  assert.equal(stdout.match(/^ +\d+ B {2}\S/gm)?.length, 6, `three sites per side:\n${stdout}`);
});

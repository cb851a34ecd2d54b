/**
 * The little IPC protocol between bench/run.ts and its child processes (receiver, iflow, raw baseline).
 * Parent → child: `{ id, type, arg? }`; child → parent: `{ type: 'ready', url }` once listening, and `{ id, value }` or
 * `{ id, error }` per request. `shutdown` closes the child cleanly (so `--cpu-prof` can write its profile);
 * a child also exits when the parent goes away (IPC channel closed), so no child outlives a crashed run.
 * With BENCH_PROFILE=<dir> set, `profileStart` / `profileStop <name>` CPU-profile the child (node:inspector, so
 * start-up and warm-ups stay out of it) into <dir>/<name>.cpuprofile. `heapSamplingStart <interval>` /
 * `heapSamplingStop` sample every allocation meanwhile, garbage included, and answer the profile (bench/allocations.ts).
 */

import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

export interface ChildStats {
  rss: number;
  heapUsed: number;
  /** process.cpuUsage() of the child, µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
}

/** V8's sampling heap profile (DevTools protocol HeapProfiler.SamplingHeapProfile), the parts the bench reads. */
export interface SamplingHeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  /** Bytes sampled as allocated by this function itself. */
  selfSize: number;
  children: SamplingHeapProfileNode[];
}

export interface SamplingHeapProfile {
  head: SamplingHeapProfileNode;
}

export interface Request {
  id: number;
  type: string;
  arg?: string;
}

export type Handlers = Record<string, (arg?: string) => unknown>;

export function childStats(): ChildStats {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return { rss: memory.rss, heapUsed: memory.heapUsed, cpuUserUs: cpu.user, cpuSystemUs: cpu.system };
}

let session: Session | undefined;

async function profileStart(): Promise<void> {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
}

async function profileStop(name = 'profile'): Promise<string> {
  const dir = process.env.BENCH_PROFILE;
  if (!session || !dir) throw new Error('no profile running');
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  session = undefined;
  const file = join(dir, `${name.replace(/[^\w.-]/g, '_')}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  return file;
}

let heapSession: Session | undefined;

/** Samples every allocation (every `interval` bytes on average), the garbage collected since included. */
async function heapSamplingStart(interval = '128'): Promise<void> {
  if (heapSession) throw new Error('heap sampling is running already');
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: Number(interval), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  } catch (err) {
    session.disconnect();
    throw err;
  }
  heapSession = session;
}

async function heapSamplingStop(): Promise<SamplingHeapProfile> {
  if (!heapSession) throw new Error('no heap sampling running');
  const { profile } = await heapSession.post('HeapProfiler.stopSampling');
  heapSession.disconnect();
  heapSession = undefined;
  return profile as SamplingHeapProfile;
}

/** Answers the parent's requests; `close` runs once on shutdown, on SIGTERM/SIGINT, or when the parent disappears. */
export function serveParent(url: string, handlers: Handlers, close: () => Promise<void>): void {
  if (!process.send) throw new Error('this script is started by bench/run.ts (it needs an IPC channel)');
  let closing = false;
  const exit = async (code: number) => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(code), 5000);
    force.unref();
    try {
      await close();
    } finally {
      process.exit(code);
    }
  };
  const all: Handlers = { stats: childStats, profileStart, profileStop, heapSamplingStart, heapSamplingStop, ...handlers };
  process.on('message', (raw: Request) => {
    if (raw.type === 'shutdown') {
      void exit(0);
      return;
    }
    const handler = all[raw.type];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown request ${raw.type}`);
        return handler(raw.arg);
      })
      .then(
        (value) => process.send?.({ id: raw.id, value }),
        (err: Error) => process.send?.({ id: raw.id, error: err.message }),
      );
  });
  process.on('disconnect', () => void exit(0));
  process.on('SIGTERM', () => void exit(0));
  process.on('SIGINT', () => void exit(0));
  process.send({ type: 'ready', url });
}

/**
 * What bench/run.ts and bench/compare.ts share: the request they send (Basic auth, ~1 KB JSON order), their child
 * processes (receiver, servers; see ipc.ts for the protocol) and the CPU readings taken from those children.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildStats } from './ipc.ts';
import { sampleOrder } from './mapping.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = resolve(here, '..');

export function numberFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
  return value;
}

export const USER = 'bench';
export const PASSWORD = 'bench-password-1';
export const AUTHORIZATION = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
export const PAYLOAD = JSON.stringify(sampleOrder());
export const HEADERS = { 'content-type': 'application/json', authorization: AUTHORIZATION };

export interface Child {
  name: string;
  url: string;
  process: ChildProcess;
  request<T>(type: string, arg?: string): Promise<T>;
}

/** Every child still running: stopChildren() ends them. */
const children = new Set<ChildProcess>();

export function startChild(name: string, script: string, env: Record<string, string>, options: { execArgv?: string[]; stdout?: number | 'ignore' } = {}): Promise<Child> {
  const child = fork(join(here, script), [], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
    stdio: ['ignore', options.stdout ?? 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let nextId = 1;
  const waiting = new Map<number, { resolve: (value: never) => void; reject: (err: Error) => void }>();
  child.on('message', (message: { id?: number; value?: unknown; error?: string }) => {
    const waiter = message.id === undefined ? undefined : waiting.get(message.id);
    if (!waiter) return;
    waiting.delete(message.id!);
    if (message.error) waiter.reject(new Error(`${name}: ${message.error}`));
    else waiter.resolve(message.value as never);
  });
  child.once('exit', () => {
    for (const waiter of waiting.values()) waiter.reject(new Error(`${name} exited`));
    waiting.clear();
  });
  const ask = <T>(type: string, arg?: string) =>
    new Promise<T>((resolveRequest, rejectRequest) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        rejectRequest(new Error(`${name} did not answer "${type}" within 10 s`));
      }, 10_000);
      waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolveRequest(value);
        },
        reject: (err) => {
          clearTimeout(timer);
          rejectRequest(err);
        },
      });
      child.send({ id, type, arg });
    });
  return new Promise<Child>((resolveStart, rejectStart) => {
    const timer = setTimeout(() => rejectStart(new Error(`${name} did not start within 60 s`)), 60_000);
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      rejectStart(new Error(`${name} exited during start (${signal ?? `code ${code}`})`));
    };
    child.once('exit', onExit);
    child.on('message', (message: { type?: string; url?: string }) => {
      if (message.type !== 'ready' || !message.url) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolveStart({ name, url: message.url, process: child, request: ask });
    });
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => resolveExit(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveExit(true);
    });
  });
}

/** Asks every child to shut down (iflow flushes its message logs, --cpu-prof writes), then kills what is left. */
export async function stopChildren(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      // With a callback, a pipe already closed (the child died) is reported there, not thrown as an 'error' event.
      if (child.connected) child.send({ id: 0, type: 'shutdown' }, () => {});
      else child.kill('SIGTERM');
      if (await exited(child, 10_000)) return;
      child.kill('SIGKILL');
      await exited(child, 2000);
    }),
  );
}

/** CPU time a process's main thread has used so far (ns, Linux schedstat), or undefined where there is no /proc. */
export function mainThreadNs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

export const cpuUsUsed = (before: ChildStats, after: ChildStats) => after.cpuUserUs - before.cpuUserUs + (after.cpuSystemUs - before.cpuSystemUs);

/** What one server spent while loaded together with others: CPU time (µs) and the requests it answered. */
export interface Spent {
  /** All the process's threads. */
  processUs: number;
  /** Its main thread alone; undefined where there is no /proc to read it from. */
  mainUs: number | undefined;
  answered: number;
}

/**
 * Loads the servers at the same time, `load(i)` driving servers[i] and resolving to its 2xx answers; which load
 * starts first rotates with `round`, so no side always gets the head start. Returns what each spent meanwhile.
 */
export async function loadTogether(servers: Child[], round: number, load: (i: number) => Promise<number>): Promise<Spent[]> {
  const pids = servers.map((server) => server.process.pid);
  const statsBefore = await Promise.all(servers.map((server) => server.request<ChildStats>('stats')));
  const mainBefore = pids.map(mainThreadNs);
  const runs: Promise<number>[] = [];
  for (let k = 0; k < servers.length; k++) {
    const i = (k + round) % servers.length;
    runs[i] = load(i);
  }
  const answered = await Promise.all(runs);
  const mainAfter = pids.map(mainThreadNs);
  const statsAfter = await Promise.all(servers.map((server) => server.request<ChildStats>('stats')));
  return servers.map((_server, i) => {
    const before = mainBefore[i];
    const after = mainAfter[i];
    return {
      processUs: cpuUsUsed(statsBefore[i], statsAfter[i]),
      mainUs: before === undefined || after === undefined ? undefined : (after - before) / 1000,
      answered: answered[i],
    };
  });
}

/** On Ctrl-C or SIGTERM: stop every child, run `cleanup` (temporary files), exit 130. */
export function stopChildrenOnSignals(cleanup: () => void): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void stopChildren().finally(() => {
        cleanup();
        process.exit(130);
      });
    });
  }
}

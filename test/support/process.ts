import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

export interface IflowProcess {
  url: string;
  /** Everything written to stdout so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Sends `signal` and resolves to the exit code once the process has ended. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** stdout's JSON lines. */
  lines(): Record<string, unknown>[];
}

/**
 * Runs `iflow start` (bin/iflow.js) as its own process on a loopback port with `env`, and resolves once it logs
 * that it listens (bounded: 30 s). The process is killed at the latest 60 s after start, or when test `t` ends.
 */
export async function startIflowProcess(t: TestContext, env: Record<string, string>): Promise<IflowProcess> {
  const child = spawn(process.execPath, ['bin/iflow.js', 'start'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  t.after(async () => {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));

  // The listening line reaches stdout by the log destination's periodic flush, long before 16 KB pile up.
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (!(url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1])) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`iflow did not report listening: ${stderr}${stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
    lines() {
      return stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

/**
 * Runs `iflow start` with `env` on a loopback port, expecting it to stop by itself (it cannot start): resolves to
 * its exit code and stderr. Killed after 30 s if it does not (the code is then null).
 */
export async function runIflowStart(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['bin/iflow.js', 'start'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(killer);
  return { code, stderr };
}

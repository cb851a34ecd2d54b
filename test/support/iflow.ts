import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { writeFlows, type FlowFiles } from './flows.ts';

export const ADMIN_USER = 'admin';
export const ADMIN_PASSWORD = 'admin-test-password-1';

/** Collects every JSON log line the server writes. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void) {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(line);
    callback();
  }
  get text(): string {
    return this.lines.join('\n');
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface RunningIflow {
  app: FastifyInstance;
  url: string;
  dataDir: string;
  logs: LogCapture;
  /** Authorization header value for the bootstrap admin. */
  adminAuth: string;
  close(): Promise<void>;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export interface StartOptions {
  flowsDir?: string;
  dataDir?: string;
  env?: Record<string, string>;
}

/** Starts iflow on a loopback port with its own data dir (removed on close unless given). */
export async function startIflow(options: StartOptions = {}): Promise<RunningIflow> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'iflow-test-'));
  const emptyFlows = options.flowsDir === undefined ? mkdtempSync(join(tmpdir(), 'iflow-flows-')) : undefined;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    IFLOW_DATA_DIR: dataDir,
    IFLOW_FLOWS_DIR: options.flowsDir ?? emptyFlows,
    IFLOW_ADMIN_USER: ADMIN_USER,
    IFLOW_ADMIN_PASSWORD: ADMIN_PASSWORD,
    IFLOW_MPL_FLUSH: '20ms',
    LOG_LEVEL: 'info',
    ...options.env,
  });
  const logs = new LogCapture();
  const app = await buildApp({ config, logStream: logs });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  // The port is known only now; redirect URIs are built from publicUrl per request, so set it here.
  if (!options.env?.IFLOW_PUBLIC_URL) app.config.publicUrl = address;
  return {
    app,
    url: address,
    dataDir,
    logs,
    adminAuth: basicAuth(ADMIN_USER, ADMIN_PASSWORD),
    async close() {
      await app.close();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
      if (emptyFlows) rmSync(emptyFlows, { recursive: true, force: true });
    },
  };
}

/** Starts iflow serving `flows`, written to a temporary folder; iflow is closed and the folder removed when test `t` ends. */
export async function startIflowWithFlows(t: TestContext, flows: FlowFiles, options: Omit<StartOptions, 'flowsDir'> = {}): Promise<RunningIflow> {
  const written = writeFlows(flows);
  const iflow = await startIflow({ ...options, flowsDir: written.dir }).catch((err: unknown) => {
    written.remove();
    throw err;
  });
  t.after(async () => {
    await iflow.close();
    written.remove();
  });
  return iflow;
}

/** Polls `condition` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function waitFor<T>(condition: () => T | Promise<T>, { timeoutMs = 5000, intervalMs = 10, what = 'condition' } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

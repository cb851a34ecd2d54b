/**
 * iflow as the benchmark runs it: buildApp() from src/app.ts serving bench/flows, with its own data dir (SQLite,
 * message processing logs on, written as normal) and JSON logs at LOG_LEVEL info on stdout, which bench/run.ts
 * points at a file. Started by bench/run.ts in its own process.
 *
 * BENCH_IFLOW_ROOT (optional) runs the iflow found in another checkout or copy (its src/app.ts), to compare a
 * prototype change against the same baseline; BENCH_IFLOW_MODULE (optional) a module exporting buildApp and
 * loadConfig, such as an esbuild bundle of src/ (plain JavaScript with real line numbers in CPU profiles).
 */
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { buildApp as BuildApp } from '../src/app.ts';
import type { loadConfig as LoadConfig } from '../src/config/index.ts';
import { serveParent } from './ipc.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(process.env.BENCH_IFLOW_ROOT || join(here, '..'));
// BENCH_IFLOW_MODULE: one module exporting both (e.g. an esbuild bundle of src/, to profile it without tsx's transform).
const bundle = process.env.BENCH_IFLOW_MODULE ? ((await import(pathToFileURL(resolve(process.env.BENCH_IFLOW_MODULE)).href)) as object) : undefined;
const { buildApp } = (bundle ?? (await import(pathToFileURL(join(root, 'src/app.ts')).href))) as { buildApp: typeof BuildApp };
const { loadConfig } = (bundle ?? (await import(pathToFileURL(join(root, 'src/config/index.ts')).href))) as { loadConfig: typeof LoadConfig };

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

// IFLOW_* settings given to the bench reach iflow (e.g. IFLOW_MPL_FLUSH=50ms), except those the bench sets itself.
const iflowSettings = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('IFLOW_')));
const config = loadConfig({
  ...iflowSettings,
  PORT: '0',
  HOST: '127.0.0.1',
  IFLOW_FLOWS_DIR: join(here, 'flows'),
  IFLOW_DATA_DIR: required('BENCH_DATA_DIR'),
  IFLOW_ADMIN_USER: required('BENCH_USER'),
  IFLOW_ADMIN_PASSWORD: required('BENCH_PASSWORD'),
  IFLOW_PARAM_RECEIVER_URL: required('BENCH_RECEIVER_URL'),
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'info',
});
const app = await buildApp({ config });
const deployed = app.flows.flows.filter((flow) => flow.status === 'deployed').map((flow) => flow.id);
if (!deployed.includes('passthrough')) throw new Error(`the bench flow did not deploy: ${JSON.stringify(app.flows.flows.map((f) => ({ id: f.id, status: f.status, error: f.error })))}`);
const url = await app.listen({ port: 0, host: '127.0.0.1' });

serveParent(url, { pendingMessageLogs: () => app.messageLogs.pendingCount }, () => app.close());

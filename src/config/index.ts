import { resolve } from 'node:path';
import { parseDuration } from './duration.ts';

/** Everything iflow reads from the environment, resolved once at start. */
export interface Config {
  port: number;
  host: string;
  /** External base URL; the OAuth redirect URI is built from it. No trailing slash. */
  publicUrl: string;
  flowsDir: string;
  dataDir: string;
  databaseUrl?: string;
  /** base64 32-byte key; when unset a key file in the data dir is used (generated on first start). */
  masterKey?: string;
  adminUser: string;
  adminPassword?: string;
  /** IFLOW_PARAM_<NAME> overrides of flows' externalized parameters, by NAME. */
  parameterOverrides: Record<string, string>;
  logLevel: string;
  /** How often every authorized credential's refresh token is exercised (ms). */
  tokenKeepAliveMs: number;
  /** How often buffered message processing logs are written (ms). */
  messageLogFlushMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function port(value: string | undefined): number {
  if (value === undefined || value === '') return 8080;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`PORT must be a port number, got "${value}"`);
  return n;
}

function duration(name: string, value: string | undefined, fallback: string): number {
  try {
    return parseDuration(value === undefined || value === '' ? fallback : value);
  } catch (err) {
    throw new ConfigError(`${name}: ${(err as Error).message}`);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const listenPort = port(env.PORT);
  const parameterOverrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith('IFLOW_PARAM_') && value !== undefined) parameterOverrides[key.slice('IFLOW_PARAM_'.length)] = value;
  }
  const publicUrl = (env.IFLOW_PUBLIC_URL || `http://localhost:${listenPort}`).replace(/\/+$/, '');
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`IFLOW_PUBLIC_URL must be an absolute URL, got "${publicUrl}"`);
  }
  return {
    port: listenPort,
    host: env.HOST || '127.0.0.1',
    publicUrl,
    flowsDir: resolve(env.IFLOW_FLOWS_DIR || './flows'),
    dataDir: resolve(env.IFLOW_DATA_DIR || './data'),
    databaseUrl: env.DATABASE_URL || undefined,
    masterKey: env.IFLOW_MASTER_KEY || undefined,
    adminUser: env.IFLOW_ADMIN_USER || 'admin',
    adminPassword: env.IFLOW_ADMIN_PASSWORD || undefined,
    parameterOverrides,
    logLevel: env.LOG_LEVEL || 'info',
    tokenKeepAliveMs: duration('IFLOW_TOKEN_KEEPALIVE', env.IFLOW_TOKEN_KEEPALIVE, '24h'),
    messageLogFlushMs: duration('IFLOW_MPL_FLUSH', env.IFLOW_MPL_FLUSH, '200ms'),
  };
}

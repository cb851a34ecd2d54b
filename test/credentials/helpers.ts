import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { followRedirects, type FollowRedirectsResult } from '../support/browser.ts';
import { startIflow, type RunningIflow } from '../support/iflow.ts';

export const CLIENT_ID = '11111111-2222-4333-8444-555555555555';
export const CLIENT_SECRET = 'cl1ent~Secret.Value_0123456789abcdefXYZ';
export const TENANT = 'contoso.example';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** Calls iflow's admin API as the bootstrap admin (or with `auth`). */
export async function api(iflow: RunningIflow, method: string, path: string, body?: unknown, auth: string | null = iflow.adminAuth): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (auth) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${iflow.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual' });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Registers the client at the fake, redirecting to iflow's loopback address (its public URL, set by startIflow). */
export function wire(iflow: RunningIflow, entra: FakeEntra, client: { clientId?: string; clientSecret?: string; extraRedirectUris?: string[] } = {}): string {
  const redirectUri = `${iflow.url}/itspaces/odata/api/v1/OAuthTokenFromCode`;
  entra.registerClient({
    clientId: client.clientId ?? CLIENT_ID,
    clientSecret: client.clientSecret ?? CLIENT_SECRET,
    redirectUris: [redirectUri, `${iflow.url}/OAuthTokenFromCode`, ...(client.extraRedirectUris ?? [])],
  });
  return redirectUri;
}

/** A fake Entra and an iflow (own data dir) wired to it; `close()` stops both. */
export async function startWired(): Promise<{ entra: FakeEntra; iflow: RunningIflow; close(): Promise<void> }> {
  const entra = await startFakeEntra();
  const iflow = await startIflow();
  wire(iflow, entra);
  return { entra, iflow, close: async () => void (await Promise.all([iflow.close(), entra.close()])) };
}

/** Temporary data dirs for tests that restart iflow on the same dir; `removeAll()` deletes them. */
export function tempDirs(prefix: string): { make(): string; removeAll(): void } {
  const dirs: string[] = [];
  return {
    make() {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    removeAll() {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The body of a Microsoft 365 authorization-code credential pointed at the fake Entra. */
export function mailCredential(entra: FakeEntra, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Microsoft365_Mail',
    type: 'oauth2-authorization-code',
    provider: 'microsoft365',
    tenant: TENANT,
    authorizationUrl: entra.authorizeUrl(TENANT),
    tokenUrl: entra.tokenUrl(TENANT),
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scope: 'https://graph.microsoft.com/Mail.Send',
    ...overrides,
  };
}

/** The admin's browser: authorize → fake Entra login → iflow callback. */
export async function authorizeInBrowser(iflow: RunningIflow, name: string): Promise<FollowRedirectsResult & { text: string }> {
  const result = await followRedirects(`${iflow.url}/api/v1/credentials/${encodeURIComponent(name)}/authorize`, { headers: { authorization: iflow.adminAuth } });
  return { ...result, text: await result.final.text() };
}

export async function createAndAuthorize(iflow: RunningIflow, entra: FakeEntra, overrides: Record<string, unknown> = {}): Promise<string> {
  const body = mailCredential(entra, overrides);
  const created = await api(iflow, 'POST', '/api/v1/credentials', body);
  if (created.status !== 201) throw new Error(`create failed: ${created.status} ${created.text}`);
  const browser = await authorizeInBrowser(iflow, String(body.name));
  if (browser.final.status !== 200) throw new Error(`authorize failed: ${browser.final.status} ${browser.text}`);
  return String(body.name);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The token service's warning when a receiver refused a renewed token too (operators search the log for it). */
export const RENEWAL_PAUSED = "a receiver refused a renewed token too; its 401s renew none of this credential's tokens for a while";

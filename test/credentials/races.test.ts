// Races between the token service and the rest: a re-authorization while a refresh of the old
// grant is in flight, and shutting down while a refresh (keep-alive or message) is in flight.
// No fixed sleeps: the slow token endpoint (setTokenDelayMs) holds a refresh open, and the tests
// wait, with a bound, for what they need to have happened.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { startIflow, waitFor, type RunningIflow } from '../support/iflow.ts';
import { api, authorizeInBrowser, createAndAuthorize, wire, startWired, tempDirs } from './helpers.ts';
import { TokenService, type TokenServiceOptions } from '../../src/credentials/token-service.ts';
import { CredentialVault } from '../../src/credentials/vault.ts';
import { loadMasterKey } from '../../src/security/crypto.ts';
import { openPostgresStore } from '../../src/store/postgres/index.ts';
import { SKIP_POSTGRES_OPTION, TestSchemas } from '../support/postgres.ts';
import { withSqliteStore } from '../support/sqlite.ts';
import type { CredentialRepository, Store } from '../../src/store/types.ts';

const vaultOf = (iflow: RunningIflow, repository: CredentialRepository = iflow.app.store.credentials) =>
  new CredentialVault(repository, loadMasterKey({ dataDir: iflow.dataDir }));

/** Whom Entra issued a valid access token to (undefined when it is not valid). */
function userOf(entra: FakeEntra, accessToken: string): string | undefined {
  const info = entra.validateAccessToken(accessToken);
  return info.valid ? info.user : undefined;
}

/** Log lines of the credentials component at error level (e.g. "The database connection is not open"). */
const errorLines = (iflow: RunningIflow) => iflow.logs.records().filter((r) => r.component === 'credentials' && Number(r.level) >= 50);

describe('re-authorization while a refresh is in flight', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;
  const material = () => iflow.app.securityMaterial;

  let stop: () => Promise<void>;
  before(async () => {
    ({ entra, iflow, close: stop } = await startWired());
  });
  after(() => stop());

  test('the callback waits for the refresh of the old grant; afterwards the new grant (bob) is used, never the old one (alice)', async () => {
    entra.setUser('alice@contoso.example');
    const name = await createAndAuthorize(iflow, entra, { name: 'Reauthorized' });
    const first = await material().getAccessToken(name);
    assert.equal(userOf(entra, first.accessToken), 'alice@contoso.example');

    entra.resetCounters();
    entra.setTokenDelayMs(2000);
    const refresh = material().getAccessToken(name, { rejectedToken: first.accessToken });
    const refreshRequest = await waitFor(() => entra.tokenRequests.find((r) => r.grantType === 'refresh_token'), { what: 'the refresh request' });

    // The admin authorizes again, as another user, while that refresh waits for its answer.
    entra.setTokenDelayMs(0);
    entra.setUser('bob@contoso.example');
    const browser = authorizeInBrowser(iflow, name);
    await waitFor(() => entra.countTokenRequests('authorization_code') === 1, { what: 'the code exchange' });
    assert.equal(refreshRequest.status, undefined, 'the code was exchanged while the refresh was still in flight');
    assert.equal((await browser).final.status, 200);

    // The message that started the refresh gets a working token.
    const refreshed = await refresh;
    assert.equal(entra.validateAccessToken(refreshed.accessToken).valid, true);

    // What is stored (and used from now on) is bob's grant.
    const stored = (await vaultOf(iflow).get(name))!;
    assert.equal(entra.refreshTokenInfo(stored.secrets.refreshToken!)?.user, 'bob@contoso.example');
    assert.equal(stored.state.status, 'authorized');
    const now = await material().getAccessToken(name);
    assert.equal(userOf(entra, now.accessToken), 'bob@contoso.example');
    iflow.app.tokenService.forget(name);
    entra.resetCounters();
    const next = await material().getAccessToken(name, { rejectedToken: now.accessToken });
    assert.equal(entra.refreshTokenInfo(entra.tokenRequests[0].refreshToken!)?.user, 'bob@contoso.example', "bob's refresh token is presented");
    assert.equal(userOf(entra, next.accessToken), 'bob@contoso.example');
  });

  test('a new grant written without the lock meanwhile is not overwritten: the refresh result is dropped and the newer token handed out', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Superseded' });
    const first = await material().getAccessToken(name);
    const vault = vaultOf(iflow);
    // Stands for a writer that does not take the credential lock (an older instance, say).
    const reauthorize = (tag: string) =>
      vault.mutate(name, (latest) => {
        const now = Date.now();
        return {
          ...latest,
          secrets: { ...latest.secrets, accessToken: `${tag}-access-token`, refreshToken: `${tag}-refresh-token`, tokenType: 'Bearer' },
          state: { status: 'authorized', user: `${tag}@contoso.example`, authorizedAt: new Date(now).toISOString(), lastRefreshAt: new Date(now).toISOString(), expiresAt: new Date(now + 3600_000).toISOString() },
        };
      });

    // The refresh succeeds, but the grant it refreshed was replaced while it waited for the answer.
    entra.resetCounters();
    entra.setTokenDelayMs(1000);
    const refresh = material().getAccessToken(name, { rejectedToken: first.accessToken });
    await waitFor(() => entra.countTokenRequests('refresh_token') === 1, { what: 'the refresh request' });
    assert.equal((await reauthorize('carol'))?.written, true);
    entra.setTokenDelayMs(0);
    assert.equal((await refresh).accessToken, 'carol-access-token');
    let stored = (await vault.get(name))!;
    assert.equal(stored.secrets.refreshToken, 'carol-refresh-token', 'the newer grant is kept');
    assert.equal(stored.state.user, 'carol@contoso.example');
    assert.ok(iflow.logs.records().some((r) => r.credential === name && r.outcome === 'superseded'));
    assert.equal((await material().getAccessToken(name)).accessToken, 'carol-access-token');

    // The refresh fails (Entra does not know carol's refresh token: invalid_grant), but the grant
    // was replaced again meanwhile: the failure is about the old grant and does not touch the new one.
    entra.resetCounters();
    entra.setTokenDelayMs(1000);
    const failing = material().getAccessToken(name, { rejectedToken: 'carol-access-token' });
    await waitFor(() => entra.countTokenRequests('refresh_token') === 1, { what: 'the refresh request' });
    assert.equal((await reauthorize('dave'))?.written, true);
    entra.setTokenDelayMs(0);
    assert.equal((await failing).accessToken, 'dave-access-token');
    assert.equal(entra.tokenRequests[0].error, 'invalid_grant');
    stored = (await vault.get(name))!;
    assert.equal(stored.state.status, 'authorized');
    assert.equal(stored.state.lastError, undefined);
    assert.equal(stored.secrets.refreshToken, 'dave-refresh-token');
  });
});

describe('shutting down while a refresh is in flight', () => {
  let entra: FakeEntra;
  const dirs = tempDirs('iflow-races-');
  const dataDir = () => dirs.make();

  before(async () => {
    entra = await startFakeEntra();
  });
  after(async () => {
    await entra.close();
    dirs.removeAll();
  });

  /** Restarts on `dir` without keep-alive; the next refresh must present the newest refresh token Entra issued. */
  async function assertNewestRefreshTokenUsedAfterRestart(dir: string, name: string): Promise<void> {
    const newest = entra.latestRefreshToken;
    const again = await startIflow({ dataDir: dir, env: { IFLOW_TOKEN_KEEPALIVE: '0' } });
    try {
      wire(again, entra);
      const stored = (await vaultOf(again).get(name))!;
      assert.equal(stored.secrets.refreshToken, newest, 'the rotated refresh token was stored before the store closed');
      const token = await again.app.securityMaterial.getAccessToken(name);
      entra.resetCounters();
      const next = await again.app.securityMaterial.getAccessToken(name, { rejectedToken: token.accessToken });
      assert.equal(entra.tokenRequests[0].refreshToken, newest);
      assert.equal(entra.validateAccessToken(next.accessToken).valid, true);
    } finally {
      await again.close();
    }
  }

  test('close waits for the keep-alive refresh in flight, which stores the rotated refresh token', async () => {
    const dir = dataDir();
    const iflow = await startIflow({ dataDir: dir, env: { IFLOW_TOKEN_KEEPALIVE: '1s' } });
    let closed = false;
    try {
      wire(iflow, entra);
      const name = await createAndAuthorize(iflow, entra, { name: 'KeepAliveAtClose' });
      const issued = entra.latestRefreshToken;
      entra.resetCounters();
      entra.setTokenDelayMs(1000);
      await waitFor(() => entra.tokenRequests.some((r) => r.grantType === 'refresh_token' && r.refreshToken === issued), { timeoutMs: 10_000, what: 'a keep-alive refresh' });
      await iflow.close();
      closed = true;
      entra.setTokenDelayMs(0);
      assert.notEqual(entra.latestRefreshToken, issued, 'the refresh completed and Entra rotated the refresh token');
      assert.deepEqual(errorLines(iflow), []);
      assert.ok(iflow.logs.records().some((r) => r.msg === 'credential token refreshed' && r.credential === name && r.reason === 'keep-alive'));
      await assertNewestRefreshTokenUsedAfterRestart(dir, name);
    } finally {
      entra.setTokenDelayMs(0);
      if (!closed) await iflow.close();
    }
  });

  test('close cuts the wait before a retry short: no further attempt, the status stays, nothing is written to a closed store', async () => {
    const dir = dataDir();
    const iflow = await startIflow({ dataDir: dir, env: { IFLOW_TOKEN_KEEPALIVE: '1s' } });
    let closed = false;
    try {
      wire(iflow, entra);
      const name = await createAndAuthorize(iflow, entra, { name: 'RetryAtClose' });
      entra.resetCounters();
      // Retry-After 10 s: the keep-alive would wait 10 s before its next attempt.
      entra.failNextTokenRequests(10, { status: 503, error: 'temporarily_unavailable', errorCodes: [], retryAfterSeconds: 10 });
      await waitFor(() => entra.tokenRequests.some((r) => r.grantType === 'refresh_token' && r.status === 503), { timeoutMs: 10_000, what: 'a failed keep-alive refresh' });
      const started = Date.now();
      await iflow.close();
      closed = true;
      assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
      assert.equal(entra.countTokenRequests('refresh_token'), 1, 'no attempt after close');
      assert.deepEqual(errorLines(iflow), []);
      entra.failNextTokenRequests(0, { status: 503, error: 'x', errorCodes: [] });
      const again = await startIflow({ dataDir: dir, env: { IFLOW_TOKEN_KEEPALIVE: '0' } });
      try {
        assert.equal((await api(again, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');
      } finally {
        await again.close();
      }
    } finally {
      entra.failNextTokenRequests(0, { status: 503, error: 'x', errorCodes: [] });
      if (!closed) await iflow.close();
    }
  });

  test('a refresh a message started completes during close and stores the rotated refresh token', async () => {
    const dir = dataDir();
    const iflow = await startIflow({ dataDir: dir, env: { IFLOW_TOKEN_KEEPALIVE: '0' } });
    let closed = false;
    try {
      wire(iflow, entra);
      const name = await createAndAuthorize(iflow, entra, { name: 'MessageAtClose' });
      const first = await iflow.app.securityMaterial.getAccessToken(name);
      entra.resetCounters();
      entra.setTokenDelayMs(1000);
      const refresh = iflow.app.securityMaterial.getAccessToken(name, { rejectedToken: first.accessToken });
      await waitFor(() => entra.countTokenRequests('refresh_token') === 1, { what: 'the refresh request' });
      const closing = iflow.app.close();
      closed = true;
      const token = await refresh;
      await closing;
      entra.setTokenDelayMs(0);
      assert.equal(entra.validateAccessToken(token.accessToken).valid, true);
      assert.deepEqual(errorLines(iflow), []);
      await assertNewestRefreshTokenUsedAfterRestart(dir, name);
    } finally {
      entra.setTokenDelayMs(0);
      if (!closed) await iflow.close();
    }
  });

  test('once stopped, the service starts no refresh: a clear temporary error, no token request', async () => {
    const dir = dataDir();
    const iflow = await startIflow({ dataDir: dir, env: { IFLOW_TOKEN_KEEPALIVE: '0' } });
    try {
      wire(iflow, entra);
      const name = await createAndAuthorize(iflow, entra, { name: 'Stopped' });
      const first = await iflow.app.securityMaterial.getAccessToken(name);
      const service = new TokenService({ vault: vaultOf(iflow), log: iflow.app.log, keepAliveMs: 0 } satisfies TokenServiceOptions);
      assert.equal((await service.getAccessToken(name)).accessToken, first.accessToken);
      await service.stop();
      entra.resetCounters();
      assert.equal((await service.getAccessToken(name)).accessToken, first.accessToken, 'a fresh cached token is still handed out');
      await assert.rejects(service.getAccessToken(name, { rejectedToken: first.accessToken }), { code: 'CREDENTIAL_TOKEN_UNAVAILABLE', message: /shutting down/ });
      assert.deepEqual(await service.runKeepAlive({ olderThanMs: 0 }), { refreshed: [], skipped: [], failed: [] });
      assert.equal(entra.countTokenRequests(), 0);
    } finally {
      await iflow.close();
    }
  });
});

describe('a change announced while the store is read', () => {
  test('a token read before the credential was changed elsewhere is used by that request, but not cached', async () => {
    const { entra, iflow, close } = await startWired();
    try {
      const name = await createAndAuthorize(iflow, entra, { name: 'ChangedWhileRead' });
      // Reads the store at once, but hands the record over only when released: the change lands in between.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let reads = 0;
      const repository = iflow.app.store.credentials;
      const slow: CredentialRepository = new Proxy(repository, {
        get(target, prop) {
          if (prop === 'get') {
            return async (wanted: string) => {
              const record = await target.get(wanted);
              if (++reads === 1) await held;
              return record;
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const service = new TokenService({ vault: vaultOf(iflow, slow), log: iflow.app.log, keepAliveMs: 0 });
      const first = service.getAccessToken(name);
      await waitFor(() => reads === 1, { what: 'the read to start' });
      // Another instance deletes the credential; the announcement reaches this service while its read is held.
      assert.equal(await repository.delete(name), true);
      service.changedInStore(name);
      release();
      assert.ok((await first).accessToken, 'the request that read it before goes on with what it read');
      await assert.rejects(service.getAccessToken(name), { code: 'CREDENTIAL_NOT_FOUND' }, 'the next request reads the store again');
    } finally {
      await close();
    }
  });
});

describe('basic credentials are cached in memory', () => {
  let iflow: RunningIflow;
  before(async () => {
    iflow = await startIflow();
  });
  after(async () => {
    await iflow.close();
  });

  test('read once, read again after forget() or a minute; the admin API drops them on update and delete', async () => {
    const created = await api(iflow, 'POST', '/api/v1/credentials', { name: 'Basic_Cached', type: 'basic', user: 'u1', password: 'p1' });
    assert.equal(created.status, 201);
    let reads = 0;
    const repository = iflow.app.store.credentials;
    const counting: CredentialRepository = new Proxy(repository, {
      get(target, prop) {
        if (prop === 'get') {
          return (name: string) => {
            reads++;
            return target.get(name);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    let offset = 0;
    const service = new TokenService({ vault: vaultOf(iflow, counting), log: iflow.app.log, keepAliveMs: 0, now: () => Date.now() + offset });
    assert.deepEqual(await service.getUserCredential('Basic_Cached'), { user: 'u1', password: 'p1' });
    assert.deepEqual(await service.getUserCredential('Basic_Cached'), { user: 'u1', password: 'p1' });
    assert.equal(reads, 1);
    service.forget('Basic_Cached');
    await service.getUserCredential('Basic_Cached');
    assert.equal(reads, 2);
    offset = 61_000;
    await service.getUserCredential('Basic_Cached');
    assert.equal(reads, 3, 'read again after a minute (another instance may have changed it)');

    // The app's own service: the admin API forgets the cached value.
    const material = iflow.app.securityMaterial;
    assert.deepEqual(await material.getUserCredential('Basic_Cached'), { user: 'u1', password: 'p1' });
    assert.equal((await api(iflow, 'PUT', '/api/v1/credentials/Basic_Cached', { type: 'basic', user: 'u2', password: 'p2' })).status, 200);
    assert.deepEqual(await material.getUserCredential('Basic_Cached'), { user: 'u2', password: 'p2' });
    assert.equal((await api(iflow, 'DELETE', '/api/v1/credentials/Basic_Cached')).status, 204);
    await assert.rejects(material.getUserCredential('Basic_Cached'), { code: 'CREDENTIAL_NOT_FOUND' });
  });
});

/** putOAuthState removes the states that expired unused; live ones stay. */
async function assertExpiredStatesPurged(store: Store): Promise<void> {
  const tag = randomBytes(4).toString('hex');
  const state = (name: string, expiresInMs: number) => ({ state: `${name}-${tag}`, credentialName: 'Microsoft365_Mail', codeVerifier: 'v1:verifier', expiresAt: new Date(Date.now() + expiresInMs).toISOString() });
  const expired = state('expired', -1000);
  const live = state('live', 600_000);
  await store.credentials.putOAuthState(expired);
  await store.credentials.putOAuthState(live);
  await store.credentials.putOAuthState(state('next', 600_000));
  assert.equal(await store.credentials.takeOAuthState(expired.state), undefined, 'the expired state was purged');
  assert.deepEqual(await store.credentials.takeOAuthState(live.state), live);
}

describe('expired OAuth states are purged', () => {
  test('SQLite', () => withSqliteStore(assertExpiredStatesPurged, 'iflow-states-'));

  test('PostgreSQL', SKIP_POSTGRES_OPTION, async () => {
    const schemas = await TestSchemas.connect();
    try {
      const store = await openPostgresStore((await schemas.create()).url, { connectionTimeoutMillis: 5000 });
      try {
        await assertExpiredStatesPurged(store);
      } finally {
        await store.close();
      }
    } finally {
      await schemas.close();
    }
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { startIflow, waitFor } from '../support/iflow.ts';
import { CLIENT_ID, CLIENT_SECRET, api, authorizeInBrowser, createAndAuthorize, mailCredential, sleep, wire, tempDirs } from './helpers.ts';

/** Every file under `dir`, recursively, as bytes. */
function allFiles(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...allFiles(path));
    else if (entry.isFile()) out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}

function assertAbsentFromFiles(dir: string, secrets: string[]) {
  const files = allFiles(dir);
  assert.ok(files.some((f) => f.path.endsWith('iflow.db')), 'the database is among the files searched');
  for (const { path, bytes } of files) {
    for (const secret of secrets) {
      assert.equal(bytes.indexOf(Buffer.from(secret, 'utf8')), -1, `${path} holds a secret in plain text (${secret.slice(0, 10)}…)`);
      // SQLite may store text as UTF-16 as well: look for that too.
      assert.equal(bytes.indexOf(Buffer.from(secret, 'utf16le')), -1, `${path} holds a secret in UTF-16 (${secret.slice(0, 10)}…)`);
    }
  }
}

describe('persistence and the master key', () => {
  let entra: FakeEntra;
  const dirs = tempDirs('iflow-cred-');
  const dataDir = () => dirs.make();

  before(async () => {
    entra = await startFakeEntra();
  });
  after(async () => {
    await entra.close();
    dirs.removeAll();
  });

  test('the rotated refresh token survives a restart on the same data dir and is the one used after it', async () => {
    const dir = dataDir();
    let iflow = await startIflow({ dataDir: dir });
    let rotated: string;
    try {
      wire(iflow, entra);
      const name = await createAndAuthorize(iflow, entra, { name: 'Restart' });
      const token = await iflow.app.securityMaterial.getAccessToken(name);
      await iflow.app.securityMaterial.getAccessToken(name, { rejectedToken: token.accessToken });
      rotated = entra.latestRefreshToken!;
      const key = statSync(join(dir, 'master.key'));
      assert.equal(key.mode & 0o777, 0o600, 'generated key file is 0600');
      assert.equal(statSync(dir).mode & 0o077, 0, 'data dir is private');
    } finally {
      await iflow.close();
    }
    iflow = await startIflow({ dataDir: dir });
    try {
      wire(iflow, entra);
      const read = await api(iflow, 'GET', '/api/v1/credentials/Restart');
      assert.equal(read.json.status, 'authorized');
      entra.resetCounters();
      const token = await iflow.app.securityMaterial.getAccessToken('Restart');
      assert.equal(entra.countTokenRequests(), 0, 'the stored access token is reused after the restart');
      await iflow.app.securityMaterial.getAccessToken('Restart', { rejectedToken: token.accessToken });
      assert.equal(entra.tokenRequests.length, 1);
      assert.equal(entra.tokenRequests[0].refreshToken, rotated, 'the rotated refresh token is the one presented after the restart');
    } finally {
      await iflow.close();
    }
  });

  test('secrets (client secret, tokens, code verifier, basic password) are in no file under the data dir and in no log line', async () => {
    const dir = dataDir();
    const iflow = await startIflow({ dataDir: dir });
    const secrets: string[] = [CLIENT_SECRET, 'basic-password-Secret-42', 'cc-Secret-value-0815'];
    try {
      wire(iflow, entra);
      entra.registerClient({ clientId: 'daemon', clientSecret: 'cc-Secret-value-0815', redirectUris: [] });
      await api(iflow, 'POST', '/api/v1/credentials', { name: 'Basic', type: 'basic', user: 'u', password: 'basic-password-Secret-42' });
      await api(iflow, 'POST', '/api/v1/credentials', { name: 'App', type: 'oauth2-client-credentials', tokenUrl: entra.tokenUrl('t'), clientId: 'daemon', clientSecret: 'cc-Secret-value-0815', scope: 'https://graph.microsoft.com/.default' });
      await iflow.app.securityMaterial.getAccessToken('App');
      await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Mail', scope: 'openid https://graph.microsoft.com/Mail.Send' }));

      // Capture the PKCE verifier of an authorization in progress (from the encrypted state row).
      const pending = await api(iflow, 'GET', '/api/v1/credentials/Mail/authorize');
      const state = new URL(pending.headers.get('location')!).searchParams.get('state')!;
      const db = new Database(join(dir, 'iflow.db'), { readonly: true });
      const row = db.prepare('SELECT code_verifier FROM oauth_states WHERE state = ?').get(state) as { code_verifier: string };
      db.close();
      const { loadMasterKey } = await import('../../src/security/crypto.ts');
      secrets.push(loadMasterKey({ dataDir: dir }).decrypt(row.code_verifier, `oauth-state:${state}`).split(' ')[0]);

      const browser = await authorizeInBrowser(iflow, 'Mail');
      assert.equal(browser.final.status, 200);
      const code = new URL(browser.hops[2].url).searchParams.get('code')!;
      secrets.push(code);
      const token = await iflow.app.securityMaterial.getAccessToken('Mail');
      await iflow.app.securityMaterial.getAccessToken('Mail', { rejectedToken: token.accessToken });
      secrets.push(...entra.issuedAccessTokens, ...entra.issuedRefreshTokens);
      // A failing refresh too (its error is stored and logged).
      entra.failNextTokenRequests(1, { status: 400, error: 'invalid_grant', errorCodes: [70008] });
      await assert.rejects(iflow.app.securityMaterial.getAccessToken('Mail', { rejectedToken: (await iflow.app.securityMaterial.getAccessToken('Mail')).accessToken }));
      // The state row of a still pending authorization.
      await api(iflow, 'GET', '/api/v1/credentials/Mail/authorize');

      assert.ok(secrets.length >= 8);
      // Control: the search does find plain text that is stored (the client id is not a secret).
      assert.ok(allFiles(dir).some((f) => f.bytes.includes(Buffer.from(CLIENT_ID))), 'the client id is found in the files');
      assertAbsentFromFiles(dir, secrets);
      for (const secret of secrets) assert.ok(!iflow.logs.text.includes(secret), `a log line holds a secret (${secret.slice(0, 10)}…)`);
      // The callback was logged, with its code and state redacted.
      assert.ok(iflow.logs.records().some((r) => JSON.stringify(r).includes('OAuthTokenFromCode?code=[Redacted]')));
    } finally {
      await iflow.close();
    }
    // After close (WAL checkpointed into the db file) still nothing.
    assertAbsentFromFiles(dir, secrets);
  });

  test('the background keep-alive runs by itself (IFLOW_TOKEN_KEEPALIVE) and stops on close', async () => {
    const iflow = await startIflow({ env: { IFLOW_TOKEN_KEEPALIVE: '1s' } });
    try {
      wire(iflow, entra);
      const name = await createAndAuthorize(iflow, entra, { name: 'Background' });
      const issued = entra.latestRefreshToken;
      entra.resetCounters();
      await waitFor(() => entra.tokenRequests.some((r) => r.grantType === 'refresh_token' && r.refreshToken === issued), { timeoutMs: 6000, what: 'a keep-alive refresh' });
      await waitFor(async () => (await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.lastRefreshAt !== undefined);
      const line = await waitFor(() => iflow.logs.records().find((r) => r.msg === 'credential token refreshed' && r.reason === 'keep-alive'));
      assert.equal(line.credential, name);
    } finally {
      await iflow.close();
    }
    const count = entra.countTokenRequests();
    await sleep(1500);
    assert.equal(entra.countTokenRequests(), count, 'no keep-alive after close');
  });

  test('a wrong master key is a clear startup error, never garbage tokens', async () => {
    const dir = dataDir();
    const key = randomBytes(32).toString('base64');
    const iflow = await startIflow({ dataDir: dir, env: { IFLOW_MASTER_KEY: key } });
    try {
      wire(iflow, entra);
      await createAndAuthorize(iflow, entra, { name: 'Keyed' });
    } finally {
      await iflow.close();
    }
    // Restarting with the same key works.
    const again = await startIflow({ dataDir: dir, env: { IFLOW_MASTER_KEY: key } });
    assert.equal((await api(again, 'GET', '/api/v1/credentials/Keyed')).json.status, 'authorized');
    await again.close();

    const other = randomBytes(32).toString('base64');
    await assert.rejects(startIflow({ dataDir: dir, env: { IFLOW_MASTER_KEY: other } }), (err: Error) => {
      assert.equal(err.name, 'MasterKeyError');
      assert.match(err.message, new RegExp(`^IFLOW_MASTER_KEY does not match the key the data in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was encrypted with`));
      assert.ok(!err.message.includes(other) && !err.message.includes(key), 'the keys are not in the message');
      return true;
    });
    // Without IFLOW_MASTER_KEY (no key file in this data dir): also refused, and no stray key file left behind.
    await assert.rejects(startIflow({ dataDir: dir }), { name: 'MasterKeyError', message: /No master key was found .* Set IFLOW_MASTER_KEY to the original key/ });
    assert.throws(() => statSync(join(dir, 'master.key')), { code: 'ENOENT' });
  });

  test('a replaced key file is a clear startup error', async () => {
    const dir = dataDir();
    const iflow = await startIflow({ dataDir: dir });
    try {
      await api(iflow, 'POST', '/api/v1/credentials', { name: 'B', type: 'basic', user: 'u', password: 'p' });
    } finally {
      await iflow.close();
    }
    writeFileSync(join(dir, 'master.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    await assert.rejects(startIflow({ dataDir: dir }), { name: 'MasterKeyError', message: /^The master key in .*master\.key does not match the key the data in/ });
  });

  test('a malformed IFLOW_MASTER_KEY is a clear startup error', async () => {
    for (const bad of ['too-short', randomBytes(16).toString('base64'), randomBytes(33).toString('base64'), 'not base64 at all!!']) {
      await assert.rejects(startIflow({ dataDir: dataDir(), env: { IFLOW_MASTER_KEY: bad } }), (err: Error) => {
        // The configuration refuses it, before a store or an admin is made (test/config).
        assert.equal(err.name, 'ConfigError');
        assert.match(err.message, /IFLOW_MASTER_KEY (must be 32 bytes encoded in base64|is not base64)/);
        assert.ok(!err.message.includes(bad), 'the value is not echoed');
        return true;
      });
    }
    // 32 bytes in url-safe base64 are fine too.
    const ok = await startIflow({ dataDir: dataDir(), env: { IFLOW_MASTER_KEY: randomBytes(32).toString('base64url') } });
    await ok.close();
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_USER, startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { followRedirects } from '../support/browser.ts';
import { startIflow, type RunningIflow } from '../support/iflow.ts';
import { loadMasterKey } from '../../src/security/crypto.ts';
import { api, authorizeInBrowser, CLIENT_ID, CLIENT_SECRET, createAndAuthorize, mailCredential, wire } from './helpers.ts';

const CALLBACK = '/itspaces/odata/api/v1/OAuthTokenFromCode';

/** The admin presses Authorize, but the browser stops at the authorization server's URL. */
async function startAuthorization(iflow: RunningIflow, name: string): Promise<URL> {
  const response = await api(iflow, 'GET', `/api/v1/credentials/${name}/authorize`);
  assert.equal(response.status, 302, response.text);
  return new URL(response.headers.get('location')!);
}

/** The fake's login page with `authorizeUrl`, up to (not into) iflow's callback: the callback URL. */
async function loginAtEntra(authorizeUrl: URL): Promise<URL> {
  const response = await fetch(authorizeUrl, { redirect: 'manual' });
  assert.equal(response.status, 302);
  return new URL(response.headers.get('location')!);
}

/** createdAt has millisecond resolution: a credential created again must not share its predecessor's. */
async function sleepUntilNextMs(): Promise<void> {
  const start = Date.now();
  while (Date.now() === start) await new Promise((resolve) => setImmediate(resolve));
}

async function get(url: string | URL): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

describe('authorization in the browser', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;
  let redirectUri: string;

  before(async () => {
    entra = await startFakeEntra();
    iflow = await startIflow();
    redirectUri = wire(iflow, entra);
  });
  after(async () => {
    await iflow.close();
    await entra.close();
  });

  test('authorize redirects with code flow parameters, state and a verifiable PKCE S256 challenge', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Params' }));
    const location = await startAuthorization(iflow, 'Params');
    assert.equal(`${location.origin}${location.pathname}`, entra.authorizeUrl('contoso.example'));
    const q = location.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('redirect_uri'), redirectUri);
    assert.equal(q.get('scope'), 'https://graph.microsoft.com/Mail.Send offline_access');
    assert.equal(q.get('code_challenge_method'), 'S256');
    const state = q.get('state')!;
    assert.ok(state.length >= 32, 'state is long and random');
    assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);

    // The state row holds the verifier encrypted; decrypted with the master key it matches the challenge.
    const db = new Database(join(iflow.dataDir, 'iflow.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT * FROM oauth_states WHERE state = ?').get(state) as { credential_name: string; code_verifier: string; expires_at: string };
      assert.equal(row.credential_name, 'Params');
      assert.match(row.code_verifier, /^v1\./);
      const verifier = loadMasterKey({ dataDir: iflow.dataDir }).decrypt(row.code_verifier, `oauth-state:${state}`).split(' ')[0];
      assert.equal(createHash('sha256').update(verifier).digest('base64url'), q.get('code_challenge'));
      const lifetime = Date.parse(row.expires_at) - Date.now();
      assert.ok(lifetime > 9 * 60_000 && lifetime <= 10 * 60_000, `state lives 10 minutes, got ${lifetime} ms`);
    } finally {
      db.close();
    }
    // Two authorizations never share a state.
    assert.notEqual((await startAuthorization(iflow, 'Params')).searchParams.get('state'), state);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/Missing/authorize')).status, 404);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/Params/authorize', undefined, null)).status, 401);
  });

  test('browser path: authorize → login → callback → authorized, user from the id_token', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Browser', scope: 'openid profile https://graph.microsoft.com/Mail.Send', user: 'admin-given@contoso.example' }));
    const before = Date.now();
    const browser = await authorizeInBrowser(iflow, 'Browser');
    assert.deepEqual(
      browser.hops.map((h) => h.status),
      [302, 302, 200],
    );
    assert.ok(browser.hops[2].url.startsWith(`${iflow.url}${CALLBACK}?`));
    assert.match(browser.final.headers.get('content-type')!, /^text\/html/);
    assert.equal(browser.final.headers.get('cache-control'), 'no-store');
    assert.equal(browser.final.headers.get('referrer-policy'), 'no-referrer');
    assert.match(browser.text, new RegExp(`Credential Browser is authorized as ${DEFAULT_USER.replace('.', '\\.')}`));
    assert.match(browser.text, /<a href="\/">/);
    // The admin's Basic credentials went to iflow only, never to the authorization server.
    assert.equal(entra.authorizeRequests.at(-1)!.authorization, undefined);

    const read = await api(iflow, 'GET', '/api/v1/credentials/Browser');
    assert.equal(read.json.status, 'authorized');
    assert.equal(read.json.user, DEFAULT_USER, 'id_token preferred_username wins over the admin-given user');
    const expiresAt = Date.parse(read.json.expiresAt);
    assert.ok(expiresAt >= before + 3500_000 && expiresAt <= Date.now() + 3600_000);
    assert.ok(Date.parse(read.json.lastRefreshAt) >= before);
    assert.ok(Date.parse(read.json.authorizedAt) >= before);
    assert.equal(read.json.lastError, undefined);
    const token = await iflow.app.securityMaterial.getAccessToken('Browser');
    assert.equal(entra.validateAccessToken(token.accessToken).valid, true);
    assert.equal(token.user, DEFAULT_USER);
    assert.equal(token.tokenType, 'Bearer');
  });

  test('without an id_token the user is the one the admin gave; the short callback path works; client auth by Basic', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Short', user: 'mailbox@contoso.example', clientAuthentication: 'basic' }));
    const location = await startAuthorization(iflow, 'Short');
    const callback = await loginAtEntra(location);
    const short = new URL(`${iflow.url}/OAuthTokenFromCode${callback.search}`);
    // A prefetching HEAD does not consume the state or the code.
    assert.notEqual((await fetch(short, { method: 'HEAD', redirect: 'manual' })).status, 200);
    const page = await get(short);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /Credential Short is authorized as mailbox@contoso\.example/);
    assert.equal(entra.tokenRequests.at(-1)!.clientAuth, 'basic');
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/Short')).json.user, 'mailbox@contoso.example');
  });

  test('state: missing, forged, replayed and expired → 400 page, nothing stored', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'States' }));
    const unchanged = async () => {
      const read = await api(iflow, 'GET', '/api/v1/credentials/States');
      assert.equal(read.json.status, 'unauthorized');
      assert.equal(read.json.expiresAt, undefined);
    };

    const missing = await get(`${iflow.url}${CALLBACK}?code=abc`);
    assert.equal(missing.status, 400);
    assert.match(missing.text, /no state/);

    const forged = await get(`${iflow.url}${CALLBACK}?code=abc&state=forged-state-value`);
    assert.equal(forged.status, 400);
    assert.match(forged.text, /unknown or was already used/);
    await unchanged();

    // A real code with a forged state is refused before the code is redeemed.
    const location = await startAuthorization(iflow, 'States');
    const callback = await loginAtEntra(location);
    const tokenRequests = entra.countTokenRequests();
    callback.searchParams.set('state', 'x'.repeat(43));
    assert.equal((await get(callback)).status, 400);
    assert.equal(entra.countTokenRequests(), tokenRequests);
    await unchanged();

    // Replayed: the first use authorizes, the second is refused.
    const again = await loginAtEntra(await startAuthorization(iflow, 'States'));
    assert.equal((await get(again)).status, 200);
    const replay = await get(again);
    assert.equal(replay.status, 400);
    assert.match(replay.text, /already used/);
    await api(iflow, 'PUT', '/api/v1/credentials/States', mailCredential(entra, { name: 'States', scope: 'https://graph.microsoft.com/Mail.ReadWrite' }));
    await unchanged();

    // Expired: the state is put back with an expiry in the past.
    const stale = await loginAtEntra(await startAuthorization(iflow, 'States'));
    const state = stale.searchParams.get('state')!;
    const record = await iflow.app.store.credentials.takeOAuthState(state);
    assert.ok(record);
    await iflow.app.store.credentials.putOAuthState({ ...record, expiresAt: new Date(Date.now() - 1000).toISOString() });
    const expired = await get(stale);
    assert.equal(expired.status, 400);
    assert.match(expired.text, /longer than 10 minutes/);
    await unchanged();
  });

  test('consent declined → a 400 page saying so (escaped), credential unchanged', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Declined' }));
    entra.setNextAuthorizeOutcome('decline');
    const browser = await authorizeInBrowser(iflow, 'Declined');
    assert.equal(browser.final.status, 400);
    assert.match(browser.text, /consent was declined/);
    assert.match(browser.text, /AADSTS65004/);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/Declined')).json.status, 'unauthorized');

    // Whatever the server (or an attacker) puts in error_description is escaped.
    const location = await startAuthorization(iflow, 'Declined');
    const state = location.searchParams.get('state')!;
    const evil = new URL(`${iflow.url}${CALLBACK}`);
    evil.searchParams.set('state', state);
    evil.searchParams.set('error', '<img src=x onerror=alert(1)>');
    evil.searchParams.set('error_description', '<script>alert("x")</script>');
    const page = await get(evil);
    assert.equal(page.status, 400);
    assert.ok(!page.text.includes('<script>alert'), 'description is escaped');
    assert.ok(!page.text.includes('<img src=x'), 'error is escaped');
    assert.match(page.text, /&#60;script&#62;/);
    assert.match(page.headers.get('content-security-policy')!, /default-src 'none'/);
  });

  test('wrong client secret → misconfigured with the server error; fixing the secret and authorizing again works', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'WrongSecret', clientSecret: 'not-the-secret' }));
    const browser = await authorizeInBrowser(iflow, 'WrongSecret');
    assert.equal(browser.final.status, 400);
    assert.match(browser.text, /misconfigured/);
    assert.match(browser.text, /AADSTS7000215/);
    assert.match(browser.text, /invalid_client/);
    assert.ok(!browser.text.includes('not-the-secret'));
    const read = await api(iflow, 'GET', '/api/v1/credentials/WrongSecret');
    assert.equal(read.json.status, 'misconfigured');
    assert.equal(read.json.lastError.error, 'invalid_client');
    assert.deepEqual(read.json.lastError.errorCodes, [7000215]);
    assert.equal(read.json.lastError.httpStatus, 401);
    assert.equal(read.json.lastError.grantType, 'authorization_code');
    assert.match(read.json.lastError.traceId, /^[0-9a-f-]{36}$/);
    assert.ok(read.json.lastError.correlationId);
    assert.match(read.json.lastError.description, /^AADSTS7000215:/);
    assert.ok(read.json.lastError.at);

    await assert.rejects(iflow.app.securityMaterial.getAccessToken('WrongSecret'), {
      name: 'CredentialError',
      code: 'CREDENTIAL_MISCONFIGURED',
      statusCode: 503,
      message: /Credential "WrongSecret" is misconfigured \(invalid_client, AADSTS7000215\): an admin fixes it .* PUT \/api\/v1\/credentials\/WrongSecret, then opens \/api\/v1\/credentials\/WrongSecret\/authorize/,
    });

    const fixed = await api(iflow, 'PUT', '/api/v1/credentials/WrongSecret', mailCredential(entra, { name: 'WrongSecret', clientSecret: CLIENT_SECRET }));
    assert.equal(fixed.json.status, 'unauthorized', 'no tokens yet: unauthorized, no longer misconfigured');
    assert.equal((await authorizeInBrowser(iflow, 'WrongSecret')).final.status, 200);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/WrongSecret')).json.status, 'authorized');
  });

  test('a code refused while authorizing again (replayed, expired) leaves a working credential authorized, its tokens in use', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'StillWorking' });
    const before = await iflow.app.store.credentials.get(name);
    const token = await iflow.app.securityMaterial.getAccessToken(name);
    entra.failNextTokenRequests(1, { status: 400, error: 'invalid_grant', errorCodes: [54005], description: 'OAuth2 Authorization code was already redeemed.' });
    const browser = await authorizeInBrowser(iflow, name);
    assert.equal(browser.final.status, 400);
    assert.match(browser.text, /keeps its earlier authorization/);
    assert.match(browser.text, /AADSTS54005/);
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'authorized');
    assert.equal(read.json.lastError, undefined);
    const after = await iflow.app.store.credentials.get(name);
    assert.deepEqual([after?.version, after?.secrets], [before?.version, before?.secrets], 'the stored record is as it was');
    // Messages go on: the token, and its refresh.
    assert.equal((await iflow.app.securityMaterial.getAccessToken(name)).accessToken, token.accessToken);
    assert.notEqual((await iflow.app.securityMaterial.getAccessToken(name, { rejectedToken: token.accessToken })).accessToken, token.accessToken);
    assert.ok(iflow.logs.records().some((r) => r.credential === name && r.msg === 'authorization code exchange failed' && r.kept === true && r.status === 'authorized'));

    // A failure that the grant's next refresh would meet too (a wrong secret) is recorded as before.
    entra.failNextTokenRequests(1, { status: 401, error: 'invalid_client', errorCodes: [7000215], description: 'Invalid client secret provided.' });
    const wrong = await authorizeInBrowser(iflow, name);
    assert.equal(wrong.final.status, 400);
    assert.match(wrong.text, /status is now &#34;misconfigured&#34;/);
    const misconfigured = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(misconfigured.json.status, 'misconfigured');
    assert.equal(misconfigured.json.lastError.error, 'invalid_client');
  });

  test('a code refused on a credential never authorized leaves it unauthorized, the error recorded; a later grant ends as before', async () => {
    const name = 'NeverAuthorized';
    assert.equal((await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name }))).status, 201);
    entra.failNextTokenRequests(1, { status: 400, error: 'invalid_grant', errorCodes: [54005], description: 'OAuth2 Authorization code was already redeemed.' });
    const browser = await authorizeInBrowser(iflow, name);
    assert.equal(browser.final.status, 400);
    assert.match(browser.text, /status stays &#34;unauthorized&#34;/);
    assert.match(browser.text, /could not be redeemed/);
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'unauthorized');
    assert.deepEqual(read.json.lastError.errorCodes, [54005]);
    await assert.rejects(iflow.app.securityMaterial.getAccessToken(name), { code: 'CREDENTIAL_NOT_AUTHORIZED' });

    // Authorized, then its grant revoked: a refused code now records that the grant has to be renewed.
    assert.equal((await authorizeInBrowser(iflow, name)).final.status, 200);
    entra.failNextTokenRequests(1, { status: 400, error: 'invalid_grant', errorCodes: [50173], description: 'The provided grant has expired due to it being revoked.' });
    const token = await iflow.app.securityMaterial.getAccessToken(name);
    await assert.rejects(iflow.app.securityMaterial.getAccessToken(name, { rejectedToken: token.accessToken }), { code: 'CREDENTIAL_REAUTHORIZATION_REQUIRED' });
    entra.failNextTokenRequests(1, { status: 400, error: 'invalid_grant', errorCodes: [54005], description: 'OAuth2 Authorization code was already redeemed.' });
    assert.match((await authorizeInBrowser(iflow, name)).text, /status is now &#34;reauthorization-required&#34;/);
  });

  test('an absurd expires_in (1e13 s, past the date range) is capped: the code exchange and a refresh keep their tokens', async () => {
    entra.setAccessTokenLifetimeSeconds(1e13);
    try {
      const name = await createAndAuthorize(iflow, entra, { name: 'HugeExpiry' });
      const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
      assert.equal(read.json.status, 'authorized');
      const expiresAt = Date.parse(read.json.expiresAt);
      assert.ok(expiresAt > Date.now() + 300 * 86_400_000 && expiresAt < Date.now() + 400 * 86_400_000, read.json.expiresAt);
      // A refresh answered the same way stores the rotated refresh token and hands out the new access token.
      const first = await iflow.app.securityMaterial.getAccessToken(name);
      const second = await iflow.app.securityMaterial.getAccessToken(name, { rejectedToken: first.accessToken });
      assert.notEqual(second.accessToken, first.accessToken);
      const stored = await iflow.app.store.credentials.get(name);
      const secrets = loadMasterKey({ dataDir: iflow.dataDir }).decryptJson<{ refreshToken?: string }>(stored!.secrets, `credential:${name}`);
      assert.equal(secrets.refreshToken, entra.latestRefreshToken, 'the rotated refresh token is stored');
    } finally {
      entra.setAccessTokenLifetimeSeconds(3600);
    }
  });

  test('an authorization started before the scope or client changed (or the credential was created again) is not redeemed', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Stale' });
    const before = await iflow.app.store.credentials.get(name);
    // Scope changed while the admin signs in with the old one: the old grant goes (unauthorized), and the code
    // obtained for the old scope must not make it authorized again.
    const pending = await loginAtEntra(await startAuthorization(iflow, name));
    const put = await api(iflow, 'PUT', `/api/v1/credentials/${name}`, mailCredential(entra, { name, scope: 'https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/Mail.Read' }));
    assert.equal(put.json.status, 'unauthorized');
    entra.resetCounters();
    const stale = await get(pending);
    assert.equal(stale.status, 409, stale.text);
    assert.match(stale.text, /changed/);
    assert.equal(entra.countTokenRequests(), 0, 'the code is not redeemed');
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'unauthorized');
    assert.notDeepEqual((await iflow.app.store.credentials.get(name))?.secrets, before?.secrets);

    // Deleted and created again (same settings) under the same name: another credential.
    const pending2 = await loginAtEntra(await startAuthorization(iflow, name));
    assert.equal((await api(iflow, 'DELETE', `/api/v1/credentials/${name}`)).status, 204);
    await sleepUntilNextMs();
    assert.equal((await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name }))).status, 201);
    const recreated = await get(pending2);
    assert.equal(recreated.status, 409, recreated.text);
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'unauthorized');

    // Unchanged settings (a new secret, a description) do not stop an authorization in progress.
    const pending3 = await loginAtEntra(await startAuthorization(iflow, name));
    assert.equal((await api(iflow, 'PUT', `/api/v1/credentials/${name}`, mailCredential(entra, { name, description: 'edited' }))).status, 200);
    const ok = await get(pending3);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');
  });

  test('a token answer over 1 MiB is not read on: a refresh and the code exchange say so', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Oversized' });
    const first = await iflow.app.securityMaterial.getAccessToken(name);
    const TOO_LARGE = /answered 200 with more than 1048576 bytes \(is tokenUrl right\?\)/;
    entra.setTokenPaddingBytes(2 * 1024 * 1024);
    try {
      // A refresh answered with 2 MiB (a valid token inside) is not taken.
      await assert.rejects(iflow.app.securityMaterial.getAccessToken(name, { rejectedToken: first.accessToken }), { code: 'CREDENTIAL_MISCONFIGURED' });
      assert.match((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.lastError.description, TOO_LARGE);
      // Nor is the browser's code exchange answered the same way: the page and the credential say why.
      const browser = await authorizeInBrowser(iflow, name);
      assert.ok(browser.final.status >= 400, `${browser.final.status} ${browser.text}`);
      assert.match(browser.text, /more than 1048576 bytes/);
      const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
      assert.match(read.json.lastError.description, TOO_LARGE);
      assert.equal(read.json.lastError.grantType, 'authorization_code');
    } finally {
      entra.setTokenPaddingBytes(0);
    }
    assert.equal((await authorizeInBrowser(iflow, name)).final.status, 200, 'authorized again once the answers are normal');
  });

  test('a code exchange answered 200 in chunks past 1 MiB (no length given) says its answer could not be read whole', async (t) => {
    const chunked = createServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"access_token":"at","token_type":"Bearer","expires_in":3600,"padding":"');
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 40; i++) response.write(chunk);
      response.end('"}');
    });
    await new Promise<void>((resolve) => chunked.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => chunked.close(() => resolve())));
    const tokenUrl = `http://127.0.0.1:${(chunked.address() as AddressInfo).port}/token`;
    const name = 'ChunkedOversized';
    assert.equal((await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name, tokenUrl }))).status, 201);
    const browser = await authorizeInBrowser(iflow, name);
    assert.ok(browser.final.status >= 400, `${browser.final.status} ${browser.text}`);
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.match(read.json.lastError.description, /could not be read whole: it broke off, or passed 1048576 bytes/);
    assert.notEqual(read.json.status, 'authorized');

    // A tokenUrl pointing at a web page (200, HTML, read whole) is told apart: not JSON.
    const page = createServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Sign in</body></html>');
    });
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => page.close(() => resolve())));
    const pageName = 'PageAsTokenUrl';
    const pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/token`;
    assert.equal((await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: pageName, tokenUrl: pageUrl }))).status, 201);
    await authorizeInBrowser(iflow, pageName);
    const pageRead = await api(iflow, 'GET', `/api/v1/credentials/${pageName}`);
    assert.equal(pageRead.json.lastError.description, 'the token endpoint did not answer JSON (is tokenUrl right?)');
  });

  test('redirect URI not registered: Entra shows its own error page and iflow keeps the state unused', async () => {
    await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Unregistered', clientId: 'unknown-client' }));
    const browser = await followRedirects(`${iflow.url}/api/v1/credentials/Unregistered/authorize`, { headers: { authorization: iflow.adminAuth } });
    assert.equal(browser.final.status, 400);
    assert.match(await browser.final.text(), /AADSTS700016/);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/Unregistered')).json.status, 'unauthorized');
  });
});

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FakeEntra } from '../support/fake-entra.ts';
import { startIflowWithFlows, waitFor, type RunningIflow } from '../support/iflow.ts';
import { startReceiver } from '../support/receiver.ts';
import { CLIENT_SECRET, RENEWAL_PAUSED, TENANT, api, authorizeInBrowser, createAndAuthorize, startWired } from './helpers.ts';
import { CredentialError } from '../../src/credentials/types.ts';
import { RENEWAL_PAUSE_MS, TokenService, type TokenServiceOptions } from '../../src/credentials/token-service.ts';
import { CredentialVault } from '../../src/credentials/vault.ts';
import { loadMasterKey } from '../../src/security/crypto.ts';

describe('token service', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;
  const material = () => iflow.app.securityMaterial;
  /** A second token service over the same store, with its own clock or timeouts. */
  const separateService = (options: Partial<TokenServiceOptions>) =>
    new TokenService({
      vault: new CredentialVault(iflow.app.store.credentials, loadMasterKey({ dataDir: iflow.dataDir })),
      log: iflow.app.log,
      keepAliveMs: 0,
      ...options,
    });

  let stop: () => Promise<void>;
  before(async () => {
    ({ entra, iflow, close: stop } = await startWired());
  });
  after(() => stop());

  test('a token is reused until shortly before expiry; 100 concurrent requests on an expired token → exactly one refresh', async () => {
    entra.setAccessTokenLifetimeSeconds(1);
    const name = await createAndAuthorize(iflow, entra, { name: 'Concurrent' });
    entra.setAccessTokenLifetimeSeconds(3600);
    const first = await material().getAccessToken(name);
    // Within its lifetime (1 s, so refreshed 0.1 s before expiry) the token is reused without asking Entra.
    entra.resetCounters();
    assert.equal((await material().getAccessToken(name)).accessToken, first.accessToken);
    assert.equal(entra.countTokenRequests(), 0);

    await waitFor(() => !entra.validateAccessToken(first.accessToken).valid, { timeoutMs: 3000, what: 'the stored token to expire' });
    entra.setTokenDelayMs(100);
    const tokens = await Promise.all(Array.from({ length: 100 }, () => material().getAccessToken(name)));
    entra.setTokenDelayMs(0);
    assert.equal(entra.countTokenRequests('refresh_token'), 1, 'exactly one refresh');
    assert.equal(entra.countTokenRequests(), 1);
    assert.equal(new Set(tokens.map((t) => t.accessToken)).size, 1, 'everyone got the same new token');
    assert.notEqual(tokens[0].accessToken, first.accessToken);
    assert.equal(entra.validateAccessToken(tokens[0].accessToken).valid, true);
    assert.ok(Date.parse(tokens[0].expiresAt) > Date.now() + 3500_000);

    // The refresh logged one info line, without any token.
    const lines = iflow.logs.records().filter((r) => r.msg === 'credential token refreshed' && r.credential === name);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].outcome, 'refreshed');
    assert.equal(lines[0].status, 'authorized');
    assert.equal(lines[0].expiresAt, tokens[0].expiresAt);
    assert.ok(!iflow.logs.text.includes(tokens[0].accessToken));
  });

  test('the rotated refresh token is stored before the new access token is handed out, and used next time', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Rotation' });
    const issuedAtAuthorization = entra.latestRefreshToken!;
    const first = await material().getAccessToken(name);
    entra.resetCounters();
    const second = await material().getAccessToken(name, { rejectedToken: first.accessToken });
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(entra.tokenRequests[0].refreshToken, issuedAtAuthorization);
    const rotated = entra.latestRefreshToken!;
    assert.notEqual(rotated, issuedAtAuthorization);
    // Stored before it was returned: a fresh read of the store already holds the rotated one.
    iflow.app.tokenService.forget(name);
    await material().getAccessToken(name, { rejectedToken: second.accessToken });
    assert.equal(entra.tokenRequests[1].refreshToken, rotated, 'the newest refresh token is presented');
  });

  test('rejectedToken: refreshes once when the stored token is the rejected one, not when it is already newer', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Rejected' });
    const token = await material().getAccessToken(name);
    entra.resetCounters();
    const [a, b, c] = await Promise.all([
      material().getAccessToken(name, { rejectedToken: token.accessToken }),
      material().getAccessToken(name, { rejectedToken: token.accessToken }),
      material().getAccessToken(name),
    ]);
    assert.equal(entra.countTokenRequests('refresh_token'), 1);
    assert.notEqual(a.accessToken, token.accessToken);
    assert.equal(b.accessToken, a.accessToken);
    assert.ok(c.accessToken === a.accessToken || c.accessToken === token.accessToken);
    // Rejecting an older token than the stored one does not refresh again.
    assert.equal((await material().getAccessToken(name, { rejectedToken: token.accessToken })).accessToken, a.accessToken);
    assert.equal(entra.countTokenRequests('refresh_token'), 1);
  });

  test("after a receiver refused a renewed token too, its rejections renew nothing for a while; other receivers' and credentials' do", async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'RefusedTwice' });
    const other = await createAndAuthorize(iflow, entra, { name: 'RefusedElsewhere' });
    let offset = 0;
    const service = separateService({ now: () => Date.now() + offset });
    const token = await service.getAccessToken(name);
    const otherToken = await service.getAccessToken(other);
    entra.resetCounters();
    service.renewedTokenRefused(name, 'api.example:443');
    service.renewedTokenRefused(name, 'api.example:443');
    const again = await service.getAccessToken(name, { rejectedToken: token.accessToken, receiver: 'api.example:443' });
    assert.equal(again.accessToken, token.accessToken, 'handed out again: the 401 stands');
    assert.equal(entra.countTokenRequests(), 0);

    // Another receiver of the same credential, and the same receiver for another credential, still renew.
    const elsewhere = await service.getAccessToken(name, { rejectedToken: token.accessToken, receiver: 'graph.example:443' });
    assert.notEqual(elsewhere.accessToken, token.accessToken);
    assert.notEqual((await service.getAccessToken(other, { rejectedToken: otherToken.accessToken, receiver: 'api.example:443' })).accessToken, otherToken.accessToken);
    assert.equal(entra.countTokenRequests('refresh_token'), 2);

    // The pause ends after RENEWAL_PAUSE_MS.
    assert.equal((await service.getAccessToken(name, { rejectedToken: elsewhere.accessToken, receiver: 'api.example:443' })).accessToken, elsewhere.accessToken);
    offset = RENEWAL_PAUSE_MS + 1;
    const renewed = await service.getAccessToken(name, { rejectedToken: elsewhere.accessToken, receiver: 'api.example:443' });
    assert.notEqual(renewed.accessToken, elsewhere.accessToken);
    assert.equal(entra.countTokenRequests('refresh_token'), 3);

    // forget() (an admin changed or authorized the credential again) ends it at once.
    service.renewedTokenRefused(name, 'api.example:443');
    assert.equal((await service.getAccessToken(name, { rejectedToken: renewed.accessToken, receiver: 'api.example:443' })).accessToken, renewed.accessToken);
    service.forget(name);
    assert.notEqual((await service.getAccessToken(name, { rejectedToken: renewed.accessToken, receiver: 'api.example:443' })).accessToken, renewed.accessToken);
    assert.equal(entra.countTokenRequests('refresh_token'), 4);

    // One warning per pause, naming the credential and the receiver.
    const warnings = iflow.logs.records().filter((r) => r.credential === name && r.msg === RENEWAL_PAUSED);
    assert.deepEqual(warnings.map((r) => [r.level, r.receiver]), [[40, 'api.example:443'], [40, 'api.example:443']]);
  });

  test('invalid_grant (AADSTS700082) → reauthorization-required → fail fast with a clear error → re-authorize → works again', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Inactive' });
    const token = await material().getAccessToken(name);
    entra.revokeRefreshTokens({ errorCodes: [700082] });
    entra.resetCounters();
    const expected = {
      name: 'CredentialError',
      code: 'CREDENTIAL_REAUTHORIZATION_REQUIRED',
      statusCode: 503,
      message: `Credential "${name}" must be re-authorized (invalid_grant, AADSTS700082): an admin opens /api/v1/credentials/${name}/authorize`,
    };
    await assert.rejects(material().getAccessToken(name, { rejectedToken: token.accessToken }), expected);
    assert.equal(entra.countTokenRequests(), 1, 'invalid_grant is not retried');

    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'reauthorization-required');
    assert.equal(read.json.lastError.error, 'invalid_grant');
    assert.deepEqual(read.json.lastError.errorCodes, [700082]);
    assert.equal(read.json.lastError.grantType, 'refresh_token');
    assert.ok(read.json.lastError.traceId);

    // Every further request fails at once, without asking Entra.
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => material().getAccessToken(name)));
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof CredentialError && r.reason.code === 'CREDENTIAL_REAUTHORIZATION_REQUIRED'));
    assert.equal(entra.countTokenRequests(), 1);
    const failedLog = iflow.logs.records().find((r) => r.credential === name && r.outcome === 'failed');
    assert.equal(failedLog?.status, 'reauthorization-required');
    assert.deepEqual(failedLog?.errorCodes, [700082]);

    // Re-authorized in the browser: works again.
    assert.equal((await authorizeInBrowser(iflow, name)).final.status, 200);
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');
    const again = await material().getAccessToken(name);
    assert.equal(entra.validateAccessToken(again.accessToken).valid, true);
    const refreshed = await material().getAccessToken(name, { rejectedToken: again.accessToken });
    assert.equal(entra.validateAccessToken(refreshed.accessToken).valid, true);
  });

  test('classification by error and codes: consent-required, blocked, misconfigured (expired secret, fixed by PUT)', async () => {
    const cases = [
      { spec: { status: 400, error: 'invalid_grant', errorCodes: [65001] }, status: 'consent-required', code: 'CREDENTIAL_CONSENT_REQUIRED' },
      { spec: { status: 400, error: 'invalid_grant', errorCodes: [53003] }, status: 'blocked', code: 'CREDENTIAL_BLOCKED' },
      { spec: { status: 400, error: 'invalid_grant', errorCodes: [50076] }, status: 'reauthorization-required', code: 'CREDENTIAL_REAUTHORIZATION_REQUIRED' },
      { spec: { status: 400, error: 'interaction_required', errorCodes: [] }, status: 'reauthorization-required', code: 'CREDENTIAL_REAUTHORIZATION_REQUIRED' },
      { spec: { status: 401, error: 'invalid_client', errorCodes: [7000222] }, status: 'misconfigured', code: 'CREDENTIAL_MISCONFIGURED' },
      // The description text never decides: an invalid_grant saying "temporarily" is still invalid_grant.
      { spec: { status: 400, error: 'invalid_grant', errorCodes: [70008], description: 'temporarily unavailable, client secret expired' }, status: 'reauthorization-required', code: 'CREDENTIAL_REAUTHORIZATION_REQUIRED' },
    ];
    for (const [i, c] of cases.entries()) {
      const name = await createAndAuthorize(iflow, entra, { name: `Classified_${i}` });
      const token = await material().getAccessToken(name);
      entra.failNextTokenRequests(1, c.spec);
      await assert.rejects(material().getAccessToken(name, { rejectedToken: token.accessToken }), { code: c.code }, JSON.stringify(c.spec));
      const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
      assert.equal(read.json.status, c.status, JSON.stringify(c.spec));
      assert.deepEqual(read.json.lastError.errorCodes, c.spec.errorCodes);
      // An admin update lifts the status: the next request tries again (and works).
      const updated = await api(iflow, 'PUT', `/api/v1/credentials/${name}`, {
        type: 'oauth2-authorization-code',
        tenant: TENANT,
        authorizationUrl: entra.authorizeUrl(TENANT),
        tokenUrl: entra.tokenUrl(TENANT),
        clientId: read.json.clientId,
        clientSecret: CLIENT_SECRET,
        scope: read.json.scope,
      });
      assert.equal(updated.json.status, 'authorized');
      assert.equal(updated.json.lastError, undefined);
      const fresh = await material().getAccessToken(name, { rejectedToken: token.accessToken });
      assert.equal(entra.validateAccessToken(fresh.accessToken).valid, true);
    }
  });

  test('an expired client secret (AADSTS7000222) → misconfigured; a new secret through PUT → works, without re-authorizing', async () => {
    entra.registerClient({ clientId: 'rotating-app', clientSecret: 'old-secret-value', redirectUris: [`${iflow.url}/itspaces/odata/api/v1/OAuthTokenFromCode`] });
    const name = await createAndAuthorize(iflow, entra, { name: 'SecretExpiry', clientId: 'rotating-app', clientSecret: 'old-secret-value' });
    const token = await material().getAccessToken(name);
    entra.expireClientSecret('rotating-app');
    await assert.rejects(material().getAccessToken(name, { rejectedToken: token.accessToken }), { code: 'CREDENTIAL_MISCONFIGURED', message: /AADSTS7000222/ });
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'misconfigured');
    assert.deepEqual(read.json.lastError.errorCodes, [7000222]);
    entra.registerClient({ clientId: 'rotating-app', clientSecret: 'new-secret-value', redirectUris: [`${iflow.url}/itspaces/odata/api/v1/OAuthTokenFromCode`] });
    const body = { type: 'oauth2-authorization-code', tenant: TENANT, authorizationUrl: entra.authorizeUrl(TENANT), tokenUrl: entra.tokenUrl(TENANT), clientId: 'rotating-app', clientSecret: 'new-secret-value', scope: read.json.scope };
    assert.equal((await api(iflow, 'PUT', `/api/v1/credentials/${name}`, body)).json.status, 'authorized');
    const fresh = await material().getAccessToken(name, { rejectedToken: token.accessToken });
    assert.equal(entra.validateAccessToken(fresh.accessToken).valid, true);
    assert.equal(entra.tokenRequests.at(-1)!.grantType, 'refresh_token', 'the grant survived the secret rotation');
  });

  test('no refresh token issued (generic provider without offline_access): reauthorization-required once the access token expires', async () => {
    entra.setAccessTokenLifetimeSeconds(1);
    const name = await createAndAuthorize(iflow, entra, { name: 'NoRefresh', provider: 'generic', tenant: undefined, scope: 'https://graph.microsoft.com/Mail.Send' });
    entra.setAccessTokenLifetimeSeconds(3600);
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'authorized');
    assert.match(read.json.warnings.join('\n'), /no refresh token/);
    const stored = entra.issuedAccessTokens.at(-1)!;
    await waitFor(() => !entra.validateAccessToken(stored).valid, { timeoutMs: 3000, what: 'the access token to expire' });
    entra.resetCounters();
    await assert.rejects(material().getAccessToken(name), { code: 'CREDENTIAL_REAUTHORIZATION_REQUIRED', message: /refresh_token_missing/ });
    assert.equal(entra.countTokenRequests(), 0);
    const after = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(after.json.status, 'reauthorization-required');
    assert.equal(after.json.lastError.error, 'refresh_token_missing');
  });

  test('transient failures (503, temporarily_unavailable, 429) are retried and leave the status alone', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Transient' });
    const token = await material().getAccessToken(name);
    // The app's service waits 0.5 s and 2 s between attempts; this one has the same logic, with short waits.
    const service = separateService({ retryDelaysMs: [20, 50] });

    entra.resetCounters();
    entra.failNextTokenRequests(1, { status: 503, error: 'temporarily_unavailable', errorCodes: [50089] });
    const retried = await service.getAccessToken(name, { rejectedToken: token.accessToken });
    assert.equal(entra.validateAccessToken(retried.accessToken).valid, true);
    assert.equal(entra.countTokenRequests(), 2, 'one failure, one retry');
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');

    entra.resetCounters();
    entra.failNextTokenRequests(2, { status: 429, error: 'server_error', errorCodes: [], retryAfterSeconds: 0 });
    const afterTwo = await service.getAccessToken(name, { rejectedToken: retried.accessToken });
    assert.equal(entra.countTokenRequests(), 3);
    assert.equal(entra.validateAccessToken(afterTwo.accessToken).valid, true);

    // Still failing after the retries: a temporary error; the status stays authorized.
    entra.resetCounters();
    entra.failNextTokenRequests(10, { status: 500, error: 'server_error', errorCodes: [] });
    await assert.rejects(service.getAccessToken(name, { rejectedToken: afterTwo.accessToken }), { code: 'CREDENTIAL_TOKEN_UNAVAILABLE', statusCode: 503, message: new RegExp(`Credential "${name}".*send the message again later`) });
    assert.equal(entra.countTokenRequests(), 3);
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'authorized');
    // What went wrong is in the read all the same, until a refresh succeeds.
    assert.equal(read.json.lastError?.error, 'server_error');
    assert.equal(read.json.lastError?.httpStatus, 500);
    entra.failNextTokenRequests(0, { status: 500, error: 'server_error', errorCodes: [] });
    // The current token (not rejected, not expired) keeps working.
    assert.equal((await service.getAccessToken(name)).accessToken, afterTwo.accessToken);
    await service.getAccessToken(name, { rejectedToken: afterTwo.accessToken });
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.lastError, undefined, 'gone once a refresh succeeded');
  });

  test('a refresh ahead of expiry that fails transiently hands out the still valid token at once, and waits before trying again', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Ahead' });
    const token = await material().getAccessToken(name);
    let offset = 0;
    const service = separateService({ now: () => Date.now() + offset });
    offset = 3600_000 - 200_000; // inside the 5-minute refresh margin, 200 s before expiry
    entra.resetCounters();
    entra.failNextTokenRequests(3, { status: 503, error: 'temporarily_unavailable', errorCodes: [] });
    const started = Date.now();
    assert.equal((await service.getAccessToken(name)).accessToken, token.accessToken);
    assert.ok(Date.now() - started < 1500, 'no retry delays (0.5 s + 2 s) while the current token works');
    assert.equal(entra.countTokenRequests(), 1);
    assert.equal((await service.getAccessToken(name)).accessToken, token.accessToken);
    assert.equal(entra.countTokenRequests(), 1, 'a struggling server is not asked again at once');
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');
    entra.failNextTokenRequests(0, { status: 503, error: 'x', errorCodes: [] });
    offset += 60_000; // the backoff is over: the next request refreshes
    const fresh = await service.getAccessToken(name);
    assert.notEqual(fresh.accessToken, token.accessToken);
    assert.equal(entra.countTokenRequests(), 2);
  });

  test('timeouts are transient', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Slow' });
    const token = await material().getAccessToken(name);
    const impatient = separateService({ requestTimeoutMs: 200, retryDelaysMs: [10] });
    entra.resetCounters();
    entra.setTokenDelayMs(2000);
    const started = Date.now();
    await assert.rejects(impatient.getAccessToken(name, { rejectedToken: token.accessToken }), { code: 'CREDENTIAL_TOKEN_UNAVAILABLE', message: /timeout/ });
    entra.setTokenDelayMs(0);
    assert.ok(Date.now() - started < 1500);
    assert.equal(entra.countTokenRequests(), 2);
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');
  });

  test('a token endpoint echoing what it was sent (Basic header, form body) gives no secret away, in any encoding', async (t) => {
    // Answers every token request with an error whose description repeats the request's Authorization and body.
    const echo = await startReceiver((request) => ({
      status: 401,
      headers: { 'content-type': 'application/json' },
      body: { error: 'invalid_client', error_description: `bad header: ${String(request.headers.authorization)} body: ${request.body}` },
    }));
    t.after(() => echo.close());
    const secret = 'Echo Sec+ret/Val&ue=~!';
    for (const clientAuthentication of ['basic', 'body']) {
      const name = `Echoed_${clientAuthentication}`;
      const created = await api(iflow, 'POST', '/api/v1/credentials', { name, type: 'oauth2-client-credentials', tokenUrl: `${echo.url}/token`, clientId: 'echo-app', clientSecret: secret, scope: 'api://x/.default', clientAuthentication });
      assert.equal(created.status, 201, created.text);
      await assert.rejects(material().getAccessToken(name), { code: 'CREDENTIAL_MISCONFIGURED' });
      const sent = echo.received.at(-1)!;
      const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
      const description = (read.json as { lastError: { description: string } }).lastError.description;
      assert.match(description, clientAuthentication === 'basic' ? /^bad header: Basic \[Redacted\] body: / : /client_secret=\[Redacted\]/, description);
      // Not as sent, in the read, the log or the store.
      const forms = [secret, encodeURIComponent(secret), new URLSearchParams([['', secret]]).toString().slice(1), String(sent.headers.authorization ?? 'none').replace(/^Basic /, '')];
      const stored = JSON.stringify(await iflow.app.store.credentials.get(name));
      for (const form of forms.filter((f) => f !== 'none')) {
        assert.ok(!read.text.includes(form), `the read holds ${form}`);
        assert.ok(!iflow.logs.text.includes(form), `the log holds ${form}`);
        assert.ok(!stored.includes(form), `the stored record holds ${form}`);
      }
    }
  });

  test('client credentials: fetched, cached until shortly before expiry, misconfigured on a wrong secret', async () => {
    entra.registerClient({ clientId: 'daemon-app', clientSecret: 'daemon-secret-value', redirectUris: [] });
    const create = await api(iflow, 'POST', '/api/v1/credentials', {
      name: 'Graph_App',
      type: 'oauth2-client-credentials',
      tokenUrl: entra.tokenUrl(TENANT),
      clientId: 'daemon-app',
      clientSecret: 'daemon-secret-value',
      scope: 'https://graph.microsoft.com/.default',
      clientAuthentication: 'basic',
    });
    assert.equal(create.status, 201, create.text);
    entra.resetCounters();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => material().getAccessToken('Graph_App')));
    assert.equal(entra.countTokenRequests('client_credentials'), 1);
    assert.equal(entra.tokenRequests[0].clientAuth, 'basic');
    const info = entra.validateAccessToken(tokens[0].accessToken);
    assert.ok(info.valid && info.kind === 'app');
    assert.equal(tokens[0].user, undefined);
    assert.equal((await material().getAccessToken('Graph_App')).accessToken, tokens[0].accessToken);
    assert.equal(entra.countTokenRequests(), 1);
    const read = await api(iflow, 'GET', '/api/v1/credentials/Graph_App');
    assert.equal(read.json.status, 'authorized');
    assert.ok(read.json.expiresAt);
    // After a restart of the cache the stored token is reused, not fetched again.
    iflow.app.tokenService.forget('Graph_App');
    assert.equal((await material().getAccessToken('Graph_App')).accessToken, tokens[0].accessToken);
    assert.equal(entra.countTokenRequests(), 1);

    const wrong = await api(iflow, 'POST', '/api/v1/credentials', { name: 'Graph_App_Wrong', type: 'oauth2-client-credentials', tokenUrl: entra.tokenUrl(TENANT), clientId: 'daemon-app', clientSecret: 'nope', scope: 'https://graph.microsoft.com/.default' });
    assert.equal(wrong.status, 201);
    await assert.rejects(material().getAccessToken('Graph_App_Wrong'), { code: 'CREDENTIAL_MISCONFIGURED', message: /Credential "Graph_App_Wrong" is misconfigured \(invalid_client, AADSTS7000215\): an admin fixes it .*PUT \/api\/v1\/credentials\/Graph_App_Wrong/ });
    const count = entra.countTokenRequests();
    await assert.rejects(material().getAccessToken('Graph_App_Wrong'), { code: 'CREDENTIAL_MISCONFIGURED' });
    assert.equal(entra.countTokenRequests(), count, 'fails fast');
    const fixed = await api(iflow, 'PUT', '/api/v1/credentials/Graph_App_Wrong', { type: 'oauth2-client-credentials', tokenUrl: entra.tokenUrl(TENANT), clientId: 'daemon-app', clientSecret: 'daemon-secret-value', scope: 'https://graph.microsoft.com/.default' });
    assert.equal(fixed.json.status, 'unauthorized');
    assert.ok(entra.validateAccessToken((await material().getAccessToken('Graph_App_Wrong')).accessToken).valid);

    const badScope = await api(iflow, 'POST', '/api/v1/credentials', { name: 'Graph_App_Scope', type: 'oauth2-client-credentials', tokenUrl: entra.tokenUrl(TENANT), clientId: 'daemon-app', clientSecret: 'daemon-secret-value', scope: 'Mail.Send' });
    assert.equal(badScope.status, 201);
    await assert.rejects(material().getAccessToken('Graph_App_Scope'), { code: 'CREDENTIAL_MISCONFIGURED', message: /invalid_scope/ });
  });

  test('keep-alive exercises resting refresh tokens and records what it finds', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'KeepAlive' });
    const revoked = await createAndAuthorize(iflow, entra, { name: 'KeepAliveRevoked' });
    await api(iflow, 'POST', '/api/v1/credentials', { name: 'KeepAliveNever', type: 'oauth2-authorization-code', tenant: TENANT, clientId: 'x', clientSecret: 'y', scope: 'Mail.Send' });

    // Refreshed less than the keep-alive period (24 h) ago: nothing to do.
    entra.resetCounters();
    const quiet = await iflow.app.tokenService.runKeepAlive();
    assert.equal(entra.countTokenRequests(), 0);
    assert.ok(quiet.skipped.includes(name) && quiet.skipped.includes('KeepAliveNever'));

    const before = entra.latestRefreshToken;
    entra.failNextTokenRequests(0, { status: 400, error: 'x', errorCodes: [] });
    const report = await iflow.app.tokenService.runKeepAlive({ olderThanMs: 0 });
    assert.ok(report.refreshed.includes(name) && report.refreshed.includes(revoked), JSON.stringify(report));
    assert.ok(report.skipped.includes('KeepAliveNever'));
    assert.notEqual(entra.latestRefreshToken, before, 'a new refresh token was issued and stored');
    const refreshes = entra.tokenRequests.filter((r) => r.grantType === 'refresh_token');
    assert.ok(refreshes.length >= 2);

    // A grant that died in the meantime is found by the keep-alive, not by the next message.
    entra.revokeRefreshTokens({ errorCodes: [50173] });
    const second = await iflow.app.tokenService.runKeepAlive({ olderThanMs: 0 });
    assert.ok(second.failed.some((f) => f.name === revoked && f.code === 'CREDENTIAL_REAUTHORIZATION_REQUIRED'), JSON.stringify(second));
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${revoked}`)).json.status, 'reauthorization-required');
  });
});

test('a store that fails under a credential read is a 503 CREDENTIAL_TOKEN_UNAVAILABLE, not the store\'s words as a 500', async (t) => {
  const receiver = await startReceiver({ status: 200, body: { ok: true } });
  t.after(() => receiver.close());
  const iflow = await startIflowWithFlows(t, { partner: { 'flow.yaml': `sender: { path: /http/partner }\nsteps:\n  - http: { address: "${receiver.url}/in", auth: { basic: Partner } }\n` } });
  assert.equal((await api(iflow, 'POST', '/api/v1/credentials', { name: 'Partner', type: 'basic', user: 'partner', password: 'partner-password-1' })).status, 201);
  // The store goes away under the running server (as a database does in an outage).
  await iflow.app.store.close();
  const answer = await fetch(`${iflow.url}/http/partner`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  assert.equal(answer.status, 503);
  const { error } = (await answer.json()) as { error: { code: string; message: string } };
  assert.equal(error.code, 'CREDENTIAL_TOKEN_UNAVAILABLE');
  assert.match(error.message, /^Credential "Partner" could not be read from the store \(.+\): send the message again$/);
  assert.equal(receiver.received.length, 0);
});

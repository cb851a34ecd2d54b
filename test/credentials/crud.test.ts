import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FakeEntra } from '../support/fake-entra.ts';
import { basicAuth, type RunningIflow } from '../support/iflow.ts';
import { CLIENT_SECRET, TENANT, api, createAndAuthorize, mailCredential, startWired } from './helpers.ts';

const SECRETS = [CLIENT_SECRET, 'basic-Passw0rd!secret', 'cc-secret-value-4711', 'rotated-Secret-value-0815'];

function assertNoSecrets(text: string) {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `response must not contain the secret ${secret.slice(0, 6)}…`);
  assert.ok(!/fake-(at|rt)\./.test(text), 'response must not contain a token');
  assert.ok(!/"(clientSecret|password|accessToken|refreshToken)"/.test(text), 'response must not name secret fields');
}

describe('credentials API', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;

  let stop: () => Promise<void>;
  before(async () => {
    ({ entra, iflow, close: stop } = await startWired());
  });
  after(() => stop());

  test('requires the admin role', async () => {
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials', undefined, null)).status, 401);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials', undefined, basicAuth('admin', 'wrong-password'))).status, 401);
    const created = await api(iflow, 'POST', '/api/v1/users', { name: 'watcher', password: 'watcher-password-1', roles: ['monitor'] });
    assert.equal(created.status, 201);
    const monitor = basicAuth('watcher', 'watcher-password-1');
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials', undefined, monitor)).status, 403);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/x/authorize', undefined, monitor)).status, 403);
  });

  test('create, read, list, update, delete; secrets are write-only', async () => {
    const body = mailCredential(entra, { name: 'Mail.crud-1', description: 'for the CRUD test', user: 'mailer@contoso.example', clientSecretExpiresAt: '2099-01-01' });
    const created = await api(iflow, 'POST', '/api/v1/credentials', body);
    assert.equal(created.status, 201, created.text);
    assertNoSecrets(created.text);
    assert.equal(created.json.name, 'Mail.crud-1');
    assert.equal(created.json.status, 'unauthorized');
    assert.equal(created.json.user, 'mailer@contoso.example');
    assert.equal(created.json.scope, 'https://graph.microsoft.com/Mail.Send offline_access', 'offline_access added for microsoft365');
    assert.equal(created.json.redirectUri, `${iflow.url}/itspaces/odata/api/v1/OAuthTokenFromCode`);
    assert.equal(created.json.authorizeUrl, `${iflow.url}/api/v1/credentials/Mail.crud-1/authorize`);
    assert.deepEqual(created.json.warnings, []);

    assert.equal((await api(iflow, 'POST', '/api/v1/credentials', body)).status, 409);

    const read = await api(iflow, 'GET', '/api/v1/credentials/Mail.crud-1');
    assert.equal(read.status, 200);
    assertNoSecrets(read.text);
    assert.equal(read.json.clientId, body.clientId);
    assert.equal(read.json.description, 'for the CRUD test');

    const list = await api(iflow, 'GET', '/api/v1/credentials');
    assert.equal(list.status, 200);
    assertNoSecrets(list.text);
    assert.ok(list.json.some((c: { name: string }) => c.name === 'Mail.crud-1'));

    // PUT without clientSecret keeps the stored one (the credential still authorizes afterwards).
    const { clientSecret: _omit, ...withoutSecret } = body;
    const updated = await api(iflow, 'PUT', '/api/v1/credentials/Mail.crud-1', { ...withoutSecret, description: 'changed' });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.description, 'changed');
    assertNoSecrets(updated.text);

    assert.equal((await api(iflow, 'DELETE', '/api/v1/credentials/Mail.crud-1')).status, 204);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/Mail.crud-1')).status, 404);
    assert.equal((await api(iflow, 'DELETE', '/api/v1/credentials/Mail.crud-1')).status, 404);
    assert.equal((await api(iflow, 'PUT', '/api/v1/credentials/Mail.crud-1', body)).status, 404);
  });

  test('names: 1–64 of A-Z a-z 0-9 . _ -, not dots alone (nor a tenant); anything else is a 400', async () => {
    for (const name of ['', 'has space', 'ümlaut', 'a/b', 'x'.repeat(65), 'semi;colon', '<script>', '.', '..']) {
      const response = await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name }));
      assert.equal(response.status, 400, `name ${JSON.stringify(name)}`);
    }
    for (const name of ['a', 'A.b_c-9', 'x'.repeat(64)]) {
      const response = await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name }));
      assert.equal(response.status, 201, `name ${JSON.stringify(name)}: ${response.text}`);
      await api(iflow, 'DELETE', `/api/v1/credentials/${name}`);
    }
    assert.equal((await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'DotTenant', tenant: '..' }))).status, 400);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/bad%20name')).status, 400);
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials/bad%20name/authorize')).status, 400);
  });

  test('type rules: required and foreign fields are 400s naming the field, never echoing a secret', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'b1', type: 'basic', user: 'u' }, /needs password/],
      [{ name: 'b2', type: 'basic', password: SECRETS[1] }, /needs user/],
      [{ name: 'b3', type: 'basic', user: 'u', password: SECRETS[1], clientId: 'x' }, /clientId does not apply/],
      [{ name: 'c1', type: 'oauth2-client-credentials', clientId: 'x', clientSecret: SECRETS[2] }, /tokenUrl/],
      [{ name: 'c2', type: 'oauth2-client-credentials', tokenUrl: 'https://x.example/token', clientId: 'x', clientSecret: SECRETS[2], authorizationUrl: 'https://x.example/a' }, /authorizationUrl does not apply/],
      [mailCredential(entra, { name: 'a1', clientSecret: undefined }), /needs clientSecret/],
      [mailCredential(entra, { name: 'a2', tokenUrl: 'ftp://x.example/token' }), /tokenUrl must be an http or https URL/],
      [mailCredential(entra, { name: 'a3', tokenUrl: 'not a url' }), /tokenUrl must be an absolute URL/],
      [{ name: 'a4', type: 'oauth2-authorization-code', provider: 'generic', clientId: 'x', clientSecret: SECRETS[0], tokenUrl: 'https://x.example/t' }, /needs authorizationUrl/],
      [{ name: 'a5', type: 'oauth2-authorization-code', provider: 'microsoft365', clientId: 'x', clientSecret: SECRETS[0] }, /needs tenant/],
      [mailCredential(entra, { name: 'a6', unknownField: 1 }), /must NOT have additional properties|unknownField/],
      [mailCredential(entra, { name: 'a7', type: 'oauth2-password' }), /type/],
      [mailCredential(entra, { name: 'a8', clientSecret: `${SECRETS[0]}\u00e9` }), /clientSecret/],
    ];
    for (const [body, message] of cases) {
      const response = await api(iflow, 'POST', '/api/v1/credentials', body);
      assert.equal(response.status, 400, `${JSON.stringify(body.name)}: ${response.text}`);
      assert.match(response.json.error.message, message);
      assertNoSecrets(response.text);
    }
    assert.equal((await api(iflow, 'GET', '/api/v1/credentials')).json.filter((c: { name: string }) => /^[abc]\d$/.test(c.name)).length, 0);
  });

  test('a body that is not JSON is a 400 that does not echo the secret', async () => {
    const response = await fetch(`${iflow.url}/api/v1/credentials`, {
      method: 'POST',
      headers: { authorization: iflow.adminAuth, 'content-type': 'application/json' },
      body: `{"name":"broken","type":"basic","user":"u","password": ${SECRETS[1]}}`,
    });
    assert.equal(response.status, 400);
    const text = await response.text();
    assert.ok(!text.includes(SECRETS[1].slice(0, 8)), `the error echoes the body: ${text}`);
  });

  test('basic and client-credentials credentials', async () => {
    const basic = await api(iflow, 'POST', '/api/v1/credentials', { name: 'Backend_Basic', type: 'basic', user: 'svc-user', password: SECRETS[1], description: 'SAP backend' });
    assert.equal(basic.status, 201, basic.text);
    assert.deepEqual(
      { name: basic.json.name, type: basic.json.type, user: basic.json.user, status: basic.json.status },
      { name: 'Backend_Basic', type: 'basic', user: 'svc-user', status: undefined },
    );
    assertNoSecrets(basic.text);
    assert.deepEqual(await iflow.app.securityMaterial.getUserCredential('Backend_Basic'), { user: 'svc-user', password: SECRETS[1] });
    // PUT without password keeps it; with one replaces it.
    assert.equal((await api(iflow, 'PUT', '/api/v1/credentials/Backend_Basic', { type: 'basic', user: 'svc-user2' })).status, 200);
    assert.deepEqual(await iflow.app.securityMaterial.getUserCredential('Backend_Basic'), { user: 'svc-user2', password: SECRETS[1] });
    assert.equal((await api(iflow, 'PUT', '/api/v1/credentials/Backend_Basic', { type: 'basic', user: 'svc-user2', password: 'another-password' })).status, 200);
    assert.equal((await iflow.app.securityMaterial.getUserCredential('Backend_Basic')).password, 'another-password');
    const typeChange = await api(iflow, 'PUT', '/api/v1/credentials/Backend_Basic', mailCredential(entra, { name: undefined }));
    assert.equal(typeChange.status, 400);
    assert.match(typeChange.json.error.message, /type cannot be changed/);
    const rename = await api(iflow, 'PUT', '/api/v1/credentials/Backend_Basic', { name: 'Other', type: 'basic', user: 'x' });
    assert.equal(rename.status, 400);

    const cc = await api(iflow, 'POST', '/api/v1/credentials', {
      name: 'Graph_App',
      type: 'oauth2-client-credentials',
      provider: 'microsoft365',
      tenant: TENANT,
      clientId: 'app-client',
      clientSecret: SECRETS[2],
      scope: 'https://graph.microsoft.com/.default',
    });
    assert.equal(cc.status, 201, cc.text);
    assert.equal(cc.json.tokenUrl, `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`, 'tenant → Entra v2 token URL');
    assert.equal(cc.json.scope, 'https://graph.microsoft.com/.default', 'no offline_access for client credentials');
    assert.equal(cc.json.status, 'unauthorized');
    assert.equal(cc.json.authorizeUrl, undefined);
    assertNoSecrets(cc.text);
    const notAuthorizable = await api(iflow, 'GET', '/api/v1/credentials/Graph_App/authorize');
    assert.equal(notAuthorizable.status, 400);
    await assert.rejects(iflow.app.securityMaterial.getUserCredential('Graph_App'), { code: 'CREDENTIAL_WRONG_TYPE', statusCode: 500 });
    await assert.rejects(iflow.app.securityMaterial.getAccessToken('Backend_Basic'), { code: 'CREDENTIAL_WRONG_TYPE' });
    await assert.rejects(iflow.app.securityMaterial.getAccessToken('Nope'), { code: 'CREDENTIAL_NOT_FOUND', statusCode: 500, message: /Credential "Nope" does not exist/ });
    await assert.rejects(iflow.app.securityMaterial.getUserCredential('Nope'), { code: 'CREDENTIAL_NOT_FOUND' });
  });

  test('microsoft365 derives the Entra URLs from the tenant; explicit URLs win', async () => {
    const derived = await api(iflow, 'POST', '/api/v1/credentials', { name: 'Derived', type: 'oauth2-authorization-code', tenant: 'organizations', clientId: 'c', clientSecret: SECRETS[0], scope: 'Mail.Send offline_access' });
    assert.equal(derived.status, 201, derived.text);
    assert.equal(derived.json.provider, 'microsoft365');
    assert.equal(derived.json.authorizationUrl, 'https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize');
    assert.equal(derived.json.tokenUrl, 'https://login.microsoftonline.com/organizations/oauth2/v2.0/token');
    assert.equal(derived.json.scope, 'Mail.Send offline_access', 'offline_access not added twice');
    // A read-back PUT with the tenant's URLs does not pin them: a tenant change moves them.
    const { warnings: _w, createdAt: _c, updatedAt: _u, status: _s, redirectUri: _r, authorizeUrl: _a, ...settings } = derived.json;
    assert.equal((await api(iflow, 'PUT', '/api/v1/credentials/Derived', settings)).status, 200);
    const moved = await api(iflow, 'PUT', '/api/v1/credentials/Derived', { ...settings, tenant: 'consumers', authorizationUrl: undefined, tokenUrl: undefined });
    assert.equal(moved.json.tokenUrl, 'https://login.microsoftonline.com/consumers/oauth2/v2.0/token');
    const explicit = await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Explicit' }));
    assert.equal(explicit.json.tokenUrl, entra.tokenUrl(TENANT));
  });

  test('changing client id, endpoints or scope drops the tokens (unauthorized); other changes keep them', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'Mail_Reset' });
    const body = mailCredential(entra, { name: 'Mail_Reset' });
    const same = await api(iflow, 'PUT', `/api/v1/credentials/${name}`, { ...body, description: 'only the description', clientSecret: undefined });
    assert.equal(same.json.status, 'authorized');
    assert.ok(same.json.expiresAt);
    const token = await iflow.app.securityMaterial.getAccessToken(name);
    assert.equal(entra.validateAccessToken(token.accessToken).valid, true);

    // The same scopes, reordered or spaced otherwise, are the same grant.
    const reordered = await api(iflow, 'PUT', `/api/v1/credentials/${name}`, { ...body, scope: ` offline_access  ${String(body.scope)}`, clientSecret: undefined });
    assert.equal(reordered.json.status, 'authorized', reordered.text);

    const rescoped = await api(iflow, 'PUT', `/api/v1/credentials/${name}`, { ...body, scope: 'https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/User.Read' });
    assert.equal(rescoped.json.status, 'unauthorized');
    assert.equal(rescoped.json.expiresAt, undefined);
    await assert.rejects(iflow.app.securityMaterial.getAccessToken(name), {
      code: 'CREDENTIAL_NOT_AUTHORIZED',
      statusCode: 503,
      message: `Credential "${name}" has not been authorized yet: an admin opens /api/v1/credentials/${name}/authorize`,
    });
  });

  test('a stale status warning: client secret expiry', async () => {
    const soon = new Date(Date.now() + 5 * 86_400_000).toISOString();
    const created = await api(iflow, 'POST', '/api/v1/credentials', mailCredential(entra, { name: 'Expiring', clientSecretExpiresAt: soon }));
    assert.match(created.json.warnings.join('\n'), /client secret expires on/);
    const past = await api(iflow, 'PUT', '/api/v1/credentials/Expiring', mailCredential(entra, { name: 'Expiring', clientSecretExpiresAt: '2020-01-01' }));
    assert.match(past.json.warnings.join('\n'), /client secret expired on 2020-01-01/);
  });
});

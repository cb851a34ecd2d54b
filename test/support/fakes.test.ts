// Tests for the stand-in servers themselves, over real loopback HTTP.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { followRedirects } from './browser.ts';
import { DEFAULT_TENANT_ID, startFakeEntra } from './fake-entra.ts';
import type { FakeEntra } from './fake-entra.ts';
import { startFakeGraph } from './fake-graph.ts';
import type { FakeGraph } from './fake-graph.ts';

const TENANT = 'contoso.example';
const CLIENT_ID = '11111111-2222-3333-4444-555555555555';
// Characters that must be form-urlencoded before base64 in HTTP Basic (RFC 6749 §2.3.1).
const CLIENT_SECRET = 'Sx8Q~a+b:c%d/é=';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const MAIL_SCOPE = 'https://graph.microsoft.com/Mail.Send offline_access openid profile';
const APP_CLIENT_ID = 'aaaaaaaa-0000-4000-8000-000000000001';
const APP_SECRET = 'app-secret';

type Json = Record<string, unknown>;

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

function jwtPayload(jwt: string): Json {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Json;
}

async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; body: Json; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
    signal,
  });
  return { status: response.status, body: (await response.json()) as Json, headers: response.headers };
}

function assertEntraError(result: { status: number; body: Json }, status: number, error: string, code: number): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error, error);
  assert.deepEqual(result.body.error_codes, [code]);
  assert.match(String(result.body.error_description), new RegExp(`^AADSTS${code}: .+\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID: [0-9a-f-]{36}\\r\\nTimestamp: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`));
  for (const key of ['timestamp', 'trace_id', 'correlation_id', 'error_uri']) assert.equal(typeof result.body[key], 'string', key);
}

describe('fake Entra ID', () => {
  let entra: FakeEntra;

  /** Drives the authorize endpoint like a browser and returns the code. */
  async function authorize(scope = MAIL_SCOPE, challenge = pkce().challenge, state = randomUUID()): Promise<string> {
    const url = new URL(entra.authorizeUrl(TENANT));
    url.search = new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope, state, code_challenge: challenge, code_challenge_method: 'S256' }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 302);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(location.searchParams.get('state'), state);
    return location.searchParams.get('code') ?? assert.fail('no code');
  }

  async function redeem(code: string, verifier: string, extra: Record<string, string> = {}) {
    return postForm(entra.tokenUrl(TENANT), { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: CLIENT_ID, ...extra }, { authorization: basic(CLIENT_ID, CLIENT_SECRET) });
  }

  async function signIn(scope = MAIL_SCOPE): Promise<Json> {
    const { verifier, challenge } = pkce();
    const result = await redeem(await authorize(scope, challenge), verifier);
    assert.equal(result.status, 200, JSON.stringify(result.body));
    return result.body;
  }

  async function refresh(refreshToken: string, extra: Record<string, string> = {}) {
    return postForm(entra.tokenUrl(TENANT), { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, ...extra });
  }

  before(async () => {
    entra = await startFakeEntra();
    entra.registerClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] });
    entra.registerClient({ clientId: APP_CLIENT_ID, clientSecret: APP_SECRET, redirectUris: [] });
  });
  after(() => entra.close());
  beforeEach(() => entra.resetCounters());

  test('authorization code flow with PKCE through a relying party, as a browser follows it', async () => {
    // A tiny relying party standing in for iflow: authorize → Entra → callback that redeems the code.
    const rp: FastifyInstance = Fastify();
    const sessions = new Map<string, string>();
    let tokens: Json = {};
    rp.get('/authorize', (req, reply) => {
      if (req.headers.authorization !== 'Basic YWRtaW46cHc=') return reply.code(401).send();
      const state = randomUUID();
      const { verifier, challenge } = pkce();
      sessions.set(state, verifier);
      const target = new URL(entra.authorizeUrl(TENANT));
      target.search = new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: `${rpUrl}/callback`, scope: MAIL_SCOPE, state, code_challenge: challenge, code_challenge_method: 'S256' }).toString();
      return reply.header('set-cookie', `rp_state=${state}; Path=/; HttpOnly`).redirect(target.toString(), 302);
    });
    rp.get('/callback', async (req, reply) => {
      const { code, state } = req.query as Record<string, string>;
      const verifier = sessions.get(state ?? '');
      if (!verifier || req.headers.cookie !== `rp_state=${state}`) return reply.code(400).send('bad state');
      const result = await postForm(entra.tokenUrl(TENANT), { grant_type: 'authorization_code', code: code ?? '', redirect_uri: `${rpUrl}/callback`, code_verifier: verifier }, { authorization: basic(CLIENT_ID, CLIENT_SECRET) });
      tokens = result.body;
      return reply.code(result.status).type('text/html').send('<p>Authorized</p>');
    });
    const rpUrl = await rp.listen({ port: 0, host: '127.0.0.1' });
    try {
      entra.registerClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI, `${rpUrl}/callback`] });
      const { hops, final } = await followRedirects(`${rpUrl}/authorize`, { headers: { authorization: 'Basic YWRtaW46cHc=' } });
      assert.deepEqual(hops.map((h) => h.status), [302, 302, 200]);
      assert.equal(await final.text(), '<p>Authorized</p>');
      assert.ok(hops[1]?.url.startsWith(entra.authorizeUrl(TENANT)));
      // The browser sends the admin's credentials and cookie only to the relying party.
      assert.equal(entra.authorizeRequests[0]?.authorization, undefined);
      assert.equal(entra.authorizeRequests[0]?.cookie, undefined);

      assert.equal(tokens.token_type, 'Bearer');
      assert.equal(tokens.scope, 'https://graph.microsoft.com/Mail.Send openid profile');
      assert.equal(tokens.expires_in, 3600);
      assert.equal(tokens.ext_expires_in, 3600);
      assert.match(String(tokens.refresh_token), /^fake-rt\./);
      const claims = jwtPayload(String(tokens.id_token));
      assert.equal(claims.preferred_username, 'alice@contoso.example');
      assert.equal(claims.name, 'Alice');
      assert.equal(claims.tid, DEFAULT_TENANT_ID);
      assert.equal(claims.aud, CLIENT_ID);
      assert.match(String(claims.oid), /^[0-9a-f-]{36}$/);
      const info = entra.validateAccessToken(String(tokens.access_token));
      assert.ok(info.valid);
      assert.equal(info.user, 'alice@contoso.example');
      assert.equal(info.clientId, CLIENT_ID);
      assert.equal(info.kind, 'delegated');
      assert.deepEqual(entra.tokenRequests.map((r) => [r.grantType, r.clientId, r.clientAuth, r.status]), [['authorization_code', CLIENT_ID, 'basic', 200]]);
    } finally {
      await rp.close();
      entra.registerClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] });
    }
  });

  test('authorize shows an error page for an unknown client or a redirect URI mismatch', async () => {
    const query = (clientId: string, redirectUri: string) =>
      new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope: MAIL_SCOPE, state: 's', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
    const unknown = await fetch(`${entra.authorizeUrl(TENANT)}?${query('nope', REDIRECT_URI)}`, { redirect: 'manual' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.headers.get('location'), null);
    assert.match(await unknown.text(), /AADSTS700016/);
    const mismatch = await fetch(`${entra.authorizeUrl(TENANT)}?${query(CLIENT_ID, `${REDIRECT_URI}/`)}`, { redirect: 'manual' });
    assert.equal(mismatch.status, 400);
    assert.match(await mismatch.text(), /AADSTS50011/);
  });

  test('authorize redirects back with access_denied when the user declines, and requires PKCE', async () => {
    entra.setNextAuthorizeOutcome('decline');
    const params = { client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: MAIL_SCOPE, state: 'st-1' };
    const declined = await fetch(`${entra.authorizeUrl(TENANT)}?${new URLSearchParams({ ...params, code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`, { redirect: 'manual' });
    assert.equal(declined.status, 302);
    const location = declined.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${REDIRECT_URI}?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent`), location);
    assert.equal(new URL(location).searchParams.get('state'), 'st-1');
    // One-shot: the next one consents again; without a code_challenge it is refused.
    const noPkce = await fetch(`${entra.authorizeUrl(TENANT)}?${new URLSearchParams(params)}`, { redirect: 'manual' });
    assert.equal(new URL(noPkce.headers.get('location') ?? '').searchParams.get('error'), 'invalid_request');
    assert.deepEqual(entra.authorizeRequests.map((r) => r.outcome), ['declined', 'redirected-error']);
    await authorize();
  });

  test('a code is bound to verifier, redirect URI and client, single use, and expires', async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(MAIL_SCOPE, challenge);
    assertEntraError(await redeem(code, pkce().verifier), 400, 'invalid_grant', 501481);
    assertEntraError(await redeem(code, verifier, { redirect_uri: `${REDIRECT_URI}x` }), 400, 'invalid_grant', 50011);
    const app = await postForm(entra.tokenUrl(TENANT), { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: APP_CLIENT_ID, client_secret: APP_SECRET });
    assertEntraError(app, 400, 'invalid_grant', 9002313);
    // Client secret in the body works as well as Basic.
    const ok = await postForm(entra.tokenUrl(TENANT), { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
    assert.equal(ok.status, 200);
    assert.equal(entra.tokenRequests.at(-1)?.clientAuth, 'body');
    assertEntraError(await redeem(code, verifier), 400, 'invalid_grant', 54005);
    assertEntraError(await redeem('made-up', verifier), 400, 'invalid_grant', 70008);

    const late = pkce();
    const lateCode = await authorize(MAIL_SCOPE, late.challenge);
    entra.expireAuthorizationCodes();
    assertEntraError(await redeem(lateCode, late.verifier), 400, 'invalid_grant', 70008);
  });

  test('client authentication errors', async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(MAIL_SCOPE, challenge);
    const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier };
    const wrong = await postForm(entra.tokenUrl(TENANT), form, { authorization: basic(CLIENT_ID, 'wrong') });
    assertEntraError(wrong, 401, 'invalid_client', 7000215);
    // The secret must be form-urlencoded before base64; the raw secret does not match.
    const raw = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
    assertEntraError(await postForm(entra.tokenUrl(TENANT), form, { authorization: raw }), 401, 'invalid_client', 7000215);
    assertEntraError(await postForm(entra.tokenUrl(TENANT), { ...form, client_id: 'unknown' }), 400, 'unauthorized_client', 700016);
    assertEntraError(await postForm(entra.tokenUrl(TENANT), { ...form, client_id: CLIENT_ID }), 401, 'invalid_client', 7000218);
    const correlated = await postForm(entra.tokenUrl(TENANT), form, { authorization: basic(CLIENT_ID, 'wrong'), 'client-request-id': 'corr-1' });
    assert.equal(correlated.body.correlation_id, 'corr-1');
    assert.equal(correlated.headers.get('cache-control'), 'no-store, no-cache');
    assert.equal(entra.countTokenRequests('authorization_code'), 5);
    // None of those consumed the code.
    assert.equal((await redeem(code, verifier)).status, 200);
  });

  test('expired client secret gives 7000222', async () => {
    entra.registerClient({ clientId: 'expiring', clientSecret: 's', redirectUris: [] });
    entra.expireClientSecret('expiring');
    const result = await postForm(entra.tokenUrl(TENANT), { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', client_id: 'expiring', client_secret: 's' });
    assertEntraError(result, 401, 'invalid_client', 7000222);
  });

  test('refresh tokens rotate, the old one stays valid, and revocation ends them', async () => {
    const first = await signIn();
    const rt1 = String(first.refresh_token);
    const second = await refresh(rt1);
    assert.equal(second.status, 200);
    const rt2 = String(second.body.refresh_token);
    assert.notEqual(rt2, rt1);
    assert.notEqual(second.body.access_token, first.access_token);
    assert.equal(entra.latestRefreshToken, rt2);
    assert.equal(entra.refreshTokenInfo(rt1)?.grantId, entra.refreshTokenInfo(rt2)?.grantId);
    // Microsoft does not revoke the previous refresh token on use.
    const again = await refresh(rt1);
    assert.equal(again.status, 200);
    assert.equal(entra.refreshTokenInfo(rt1)?.redeemed, 2);
    assert.deepEqual(entra.tokenRequests.filter((r) => r.grantType === 'refresh_token').map((r) => r.refreshToken), [rt1, rt1]);

    const narrower = await refresh(rt2, { scope: 'https://graph.microsoft.com/Mail.Send' });
    assert.equal(narrower.body.scope, 'https://graph.microsoft.com/Mail.Send');
    assert.equal(narrower.body.id_token, undefined);
    assertEntraError(await refresh(rt2, { scope: 'https://graph.microsoft.com/Mail.Read' }), 400, 'invalid_grant', 65001);

    entra.revokeRefreshTokens();
    assertEntraError(await refresh(rt2), 400, 'invalid_grant', 70008);
    entra.revokeRefreshTokens({ errorCodes: [700082] });
    assertEntraError(await refresh(rt1), 400, 'invalid_grant', 700082);
    // A new authorization works again.
    assert.equal((await refresh(String((await signIn()).refresh_token))).status, 200);
  });

  test('no refresh token without offline_access, no id_token without openid', async () => {
    const tokens = await signIn('https://graph.microsoft.com/Mail.Send');
    assert.equal(tokens.refresh_token, undefined);
    assert.equal(tokens.id_token, undefined);
    assert.equal(typeof tokens.access_token, 'string');
  });

  test('client credentials', async () => {
    const ok = await postForm(entra.tokenUrl(TENANT), { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' }, { authorization: basic(APP_CLIENT_ID, APP_SECRET) });
    assert.equal(ok.status, 200);
    assert.deepEqual(Object.keys(ok.body).sort(), ['access_token', 'expires_in', 'ext_expires_in', 'token_type']);
    const info = entra.validateAccessToken(String(ok.body.access_token));
    assert.ok(info.valid);
    assert.equal(info.kind, 'app');
    assert.equal(info.user, undefined);
    const bad = await postForm(entra.tokenUrl(TENANT), { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/Mail.Send', client_id: APP_CLIENT_ID, client_secret: APP_SECRET });
    assertEntraError(bad, 400, 'invalid_scope', 1002012);
    assertEntraError(await postForm(entra.tokenUrl(TENANT), { grant_type: 'password', client_id: APP_CLIENT_ID, client_secret: APP_SECRET }), 400, 'unsupported_grant_type', 70003);
    assert.equal(entra.countTokenRequests('client_credentials'), 2);
    assert.equal(entra.countTokenRequests(), 3);
  });

  test('injected failures answer in Entra shape, then normal service resumes', async () => {
    entra.failNextTokenRequests(2, { status: 503, error: 'temporarily_unavailable', errorCodes: [], retryAfterSeconds: 7 });
    const form = { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', client_id: APP_CLIENT_ID, client_secret: APP_SECRET };
    for (let i = 0; i < 2; i++) {
      const result = await postForm(entra.tokenUrl(TENANT), form);
      assert.equal(result.status, 503);
      assert.equal(result.body.error, 'temporarily_unavailable');
      assert.deepEqual(result.body.error_codes, []);
      assert.equal(result.headers.get('retry-after'), '7');
    }
    assert.equal((await postForm(entra.tokenUrl(TENANT), form)).status, 200);
    assert.deepEqual(entra.tokenRequests.map((r) => [r.injected, r.clientId, r.clientAuth, r.status]), [[true, APP_CLIENT_ID, 'body', 503], [true, APP_CLIENT_ID, 'body', 503], [false, APP_CLIENT_ID, 'body', 200]]);

    entra.failNextTokenRequests(1, { status: 400, error: 'invalid_grant', errorCodes: [700082] });
    assertEntraError(await postForm(entra.tokenUrl(TENANT), form), 400, 'invalid_grant', 700082);
  });

  test('slow token endpoint: a client timeout fires and the server keeps working', async () => {
    entra.setTokenDelayMs(10_000);
    const form = { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', client_id: APP_CLIENT_ID, client_secret: APP_SECRET };
    const started = Date.now();
    await assert.rejects(postForm(entra.tokenUrl(TENANT), form, {}, AbortSignal.timeout(100)), { name: 'TimeoutError' });
    assert.ok(Date.now() - started < 5000);
    entra.setTokenDelayMs(0);
    assert.equal((await postForm(entra.tokenUrl(TENANT), form)).status, 200);
  });

  test('access token lifetime and expiry', async () => {
    entra.setAccessTokenLifetimeSeconds(120);
    const tokens = await signIn();
    assert.equal(tokens.expires_in, 120);
    entra.setAccessTokenLifetimeSeconds(3600);
    entra.expireAccessTokens();
    assert.deepEqual(entra.validateAccessToken(String(tokens.access_token)), { valid: false, reason: 'expired' });
    assert.deepEqual(entra.validateAccessToken('nope'), { valid: false, reason: 'unknown' });
  });
});

describe('fake Microsoft Graph', () => {
  let entra: FakeEntra;
  let graph: FakeGraph;
  let delegated: string;
  let appOnly: string;

  const mail = (overrides: Json = {}): Json => ({
    message: {
      subject: 'Hello',
      body: { contentType: 'Text', content: 'Hi there' },
      toRecipients: [{ emailAddress: { address: 'bob@fabrikam.example', name: 'Bob' } }],
      ...overrides,
    },
  });

  async function send(path: string, body: unknown, token: string | undefined, headers: Record<string, string> = {}) {
    const response = await fetch(`${graph.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: (text ? JSON.parse(text) : undefined) as { error: { code: string; message: string; innerError: Json } } | undefined };
  }

  async function delegatedToken(): Promise<string> {
    const { verifier, challenge } = pkce();
    const url = `${entra.authorizeUrl('common')}?${new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: MAIL_SCOPE, code_challenge: challenge, code_challenge_method: 'S256' })}`;
    const location = (await fetch(url, { redirect: 'manual' })).headers.get('location') ?? '';
    const code = new URL(location).searchParams.get('code') ?? '';
    const result = await postForm(entra.tokenUrl('common'), { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
    return String(result.body.access_token);
  }

  before(async () => {
    entra = await startFakeEntra();
    graph = await startFakeGraph({ entra });
    entra.registerClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] });
    entra.registerClient({ clientId: APP_CLIENT_ID, clientSecret: APP_SECRET, redirectUris: [] });
    delegated = await delegatedToken();
    const app = await postForm(entra.tokenUrl(TENANT), { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', client_id: APP_CLIENT_ID, client_secret: APP_SECRET });
    appOnly = String(app.body.access_token);
  });
  after(async () => {
    await graph.close();
    await entra.close();
  });
  beforeEach(() => graph.reset());

  test('followRedirects refuses to follow more than maxHops', async () => {
    await assert.rejects(followRedirects(`${entra.authorizeUrl('common')}?${new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'x', code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`, { maxHops: 0 }), /more than 0 redirects/);
  });

  test('202 for /me with a delegated token; the mail is recorded', async () => {
    const result = await send('/v1.0/me/sendMail', { ...mail(), saveToSentItems: false }, delegated, { 'client-request-id': 'c-1' });
    assert.equal(result.status, 202);
    assert.equal(result.text, '');
    assert.match(result.headers.get('request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(result.headers.get('client-request-id'), 'c-1');
    assert.equal(graph.sent.length, 1);
    const [sent] = graph.sent;
    assert.equal(sent?.user, 'alice@contoso.example');
    assert.equal(sent?.saveToSentItems, false);
    assert.equal(sent?.authorization, `Bearer ${delegated}`);
    assert.equal(sent?.message.subject, 'Hello');
    assert.equal(sent?.kind, 'delegated');
    // Graph paths are case-insensitive; saveToSentItems defaults to true.
    assert.equal((await send('/v1.0/me/sendmail', mail(), delegated)).status, 202);
    assert.equal(graph.sent[1]?.saveToSentItems, true);
  });

  test('/users/{upn} with an app token; app token on /me and foreign mailbox are refused', async () => {
    assert.equal((await send('/v1.0/users/shared@contoso.example/sendMail', mail(), appOnly)).status, 202);
    assert.equal(graph.sent[0]?.user, 'shared@contoso.example');
    assert.equal(graph.sent[0]?.kind, 'app');
    const me = await send('/v1.0/me/sendMail', mail(), appOnly);
    assert.equal(me.status, 400);
    assert.equal(me.json?.error.code, 'BadRequest');
    const foreign = await send('/v1.0/users/bob@contoso.example/sendMail', mail(), delegated);
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json?.error.code, 'ErrorAccessDenied');
    assert.equal((await send('/v1.0/users/alice@contoso.example/sendMail', mail(), delegated)).status, 202);
  });

  test('401 for missing, unknown and expired tokens, in Graph error shape', async () => {
    for (const token of [undefined, 'garbage']) {
      const result = await send('/v1.0/me/sendMail', mail(), token);
      assert.equal(result.status, 401);
      assert.equal(result.json?.error.code, 'InvalidAuthenticationToken');
      assert.equal(result.json?.error.innerError['request-id'], result.headers.get('request-id'));
      assert.equal(typeof result.json?.error.innerError.date, 'string');
      assert.match(result.headers.get('www-authenticate') ?? '', /^Bearer /);
    }
    const fresh = await delegatedToken();
    entra.expireAccessTokens();
    const expired = await send('/v1.0/me/sendMail', mail(), fresh);
    assert.equal(expired.status, 401);
    assert.match(expired.json?.error.message ?? '', /expired/);
    delegated = await delegatedToken();
    appOnly = String((await postForm(entra.tokenUrl(TENANT), { grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', client_id: APP_CLIENT_ID, client_secret: APP_SECRET })).body.access_token);
    assert.equal(graph.sent.length, 0);
  });

  test('400 for invalid bodies', async () => {
    const cases: [Json | string, string][] = [
      [mail({ toRecipients: [{ emailAddress: { address: 'not-an-address' } }] }), 'ErrorInvalidRecipients'],
      [mail({ toRecipients: [] }), 'ErrorInvalidRecipients'],
      [mail({ to: 'bob@fabrikam.example' }), 'RequestBodyRead'],
      [mail({ body: { contentType: 'Markdown', content: 'x' } }), 'RequestBodyRead'],
      [mail({ attachments: [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'a.txt', contentBytes: 'not base64!' }] }), 'RequestBodyRead'],
      [mail({ internetMessageHeaders: [{ name: 'Foo', value: 'bar' }] }), 'InvalidInternetMessageHeader'],
      [{ subject: 'no message wrapper' }, 'RequestBodyRead'],
      [{ saveToSentItems: true }, 'invalidRequest'],
      ['{not json', 'invalidRequest'],
    ];
    for (const [body, code] of cases) {
      const result = await send('/v1.0/me/sendMail', body, delegated);
      assert.equal(result.status, 400, JSON.stringify(body));
      assert.equal(result.json?.error.code, code, JSON.stringify(body));
    }
    const withAttachment = mail({
      ccRecipients: [{ emailAddress: { address: 'carol@fabrikam.example' } }],
      attachments: [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'a.txt', contentType: 'text/plain', contentBytes: Buffer.from('hello').toString('base64') }],
    });
    assert.equal((await send('/v1.0/me/sendMail', withAttachment, delegated)).status, 202);
    assert.equal(graph.sent.length, 1);
  });

  test('413 above 4 MB', async () => {
    const big = mail({ attachments: [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'big.bin', contentBytes: randomBytes(3 * 1024 * 1024 + 10).toString('base64') }] });
    const result = await send('/v1.0/me/sendMail', big, delegated);
    assert.equal(result.status, 413);
    assert.equal(graph.sent.length, 0);
  });

  test('injected throttling with Retry-After, then success; requests are counted', async () => {
    graph.failNext(1, { status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfterSeconds: 2 });
    const throttled = await send('/v1.0/me/sendMail', mail(), delegated);
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), '2');
    assert.equal(throttled.json?.error.code, 'ApplicationThrottled');
    assert.equal((await send('/v1.0/me/sendMail', mail(), delegated)).status, 202);
    assert.equal(graph.requestCount, 2);
    assert.deepEqual(graph.requests.map((r) => [r.status, r.injected]), [[429, true], [202, false]]);
    assert.equal((await send('/v1.0/me/messages', mail(), delegated)).status, 404);
  });
});

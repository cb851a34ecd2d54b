import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { basicAuth, startIflow, waitFor, type RunningIflow } from '../support/iflow.ts';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { startFakeGraph, type FakeGraph } from '../support/fake-graph.ts';
import { followRedirects } from '../support/browser.ts';
import { writeFlows } from '../support/flows.ts';
import { RENEWAL_PAUSED } from '../credentials/helpers.ts';

/**
 * The seed scenario end to end, on the sample flows in flows/: an admin creates and authorizes
 * the credential in a "browser", clients POST mail requests, Graph (a stand-in) receives them.
 */

const CLIENT_ID = 'c0ffee00-0000-4000-8000-000000000001';
const CLIENT_SECRET = 'client-secret-Xy9~never-shown';
const APP_CLIENT_ID = 'c0ffee00-0000-4000-8000-000000000002';
const APP_SECRET = 'app-secret-Qq7~never-shown';
const TENANT = 'contoso.example';
const SENDER_PASSWORD = 'mail-sender-password-1';
const SENDER = basicAuth('mailer', SENDER_PASSWORD);

const RAW_MAIL = { message: { subject: 'Retry', body: { contentType: 'Text', content: 'x' }, toRecipients: [{ emailAddress: { address: 'g@contoso.example' } }] } };

describe('send-mail sample flows against stand-in Entra and Graph', () => {
  let entra: FakeEntra;
  let graph: FakeGraph;
  let iflow: RunningIflow;
  let flows: ReturnType<typeof writeFlows>;

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${iflow.url}${path}`, { ...init, headers: { authorization: iflow.adminAuth, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

  before(async () => {
    entra = await startFakeEntra();
    graph = await startFakeGraph({ entra });
    // The sample flows as shipped, plus one that uses the http step's own auth (to see a Graph 401
    // answered by one refresh and one retry).
    flows = writeFlows({
      'send-mail-auth': {
        'flow.yaml': `
parameters:
  GRAPH_BASE_URL: https://graph.microsoft.com
sender: { path: /http/sendmail-auth }
steps:
  - http:
      address: "{{GRAPH_BASE_URL}}/v1.0/me/sendMail"
      auth: { oauth2AuthorizationCode: Microsoft365_Mail }
`,
      },
    });
    cpSync('flows', flows.dir, { recursive: true });
    iflow = await startIflow({ flowsDir: flows.dir, env: { IFLOW_PARAM_GRAPH_BASE_URL: graph.url, IFLOW_PARAM_SENDER_MAILBOX: 'noreply@contoso.example' } });
    entra.registerClient({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${iflow.app.config.publicUrl}/itspaces/odata/api/v1/OAuthTokenFromCode`] });
    entra.registerClient({ clientId: APP_CLIENT_ID, clientSecret: APP_SECRET, redirectUris: [] });

    const created = await admin('/api/v1/credentials', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Microsoft365_Mail',
        type: 'oauth2-authorization-code',
        provider: 'generic',
        authorizationUrl: entra.authorizeUrl(TENANT),
        tokenUrl: entra.tokenUrl(TENANT),
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        scope: 'https://graph.microsoft.com/Mail.Send offline_access openid',
      }),
    });
    assert.equal(created.status, 201, await created.text());
    const app = await admin('/api/v1/credentials', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Microsoft365_MailApp',
        type: 'oauth2-client-credentials',
        tokenUrl: entra.tokenUrl(TENANT),
        clientId: APP_CLIENT_ID,
        clientSecret: APP_SECRET,
        scope: 'https://graph.microsoft.com/.default',
      }),
    });
    assert.equal(app.status, 201, await app.text());
    const user = await admin('/api/v1/users', { method: 'POST', body: JSON.stringify({ name: 'mailer', password: SENDER_PASSWORD, roles: ['ESBMessaging.send'] }) });
    assert.equal(user.status, 201);

    await authorizeInBrowser();
  });

  /** The admin's browser: iflow authorize → Entra login → iflow callback page. */
  async function authorizeInBrowser() {
    const browser = await followRedirects(`${iflow.url}/api/v1/credentials/Microsoft365_Mail/authorize`, { headers: { authorization: iflow.adminAuth } });
    assert.deepEqual(browser.hops.map((h) => h.status), [302, 302, 200]);
    assert.match(await browser.final.text(), /authorized/i);
  }

  after(async () => {
    await iflow?.close();
    await graph?.close();
    await entra?.close();
    flows?.remove();
  });

  const send = (path: string, body: unknown, auth = SENDER) =>
    fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('the credential reads as authorized by the signed-in user, with no secret in the read', async () => {
    const response = await admin('/api/v1/credentials/Microsoft365_Mail');
    assert.equal(response.status, 200);
    const text = await response.text();
    const credential = JSON.parse(text) as Record<string, unknown>;
    assert.equal(credential.status, 'authorized');
    assert.equal(credential.user, 'alice@contoso.example');
    assert.ok(credential.expiresAt);
    assert.equal(credential.redirectUri, `${iflow.app.config.publicUrl}/itspaces/odata/api/v1/OAuthTokenFromCode`);
    assert.ok(!text.includes(CLIENT_SECRET));
    for (const token of [...entra.issuedAccessTokens, ...entra.issuedRefreshTokens]) assert.ok(!text.includes(token));
  });

  test('send-mail: a simple request becomes a Graph sendMail as the user, 202 and the message id', async () => {
    const before = graph.sent.length;
    const response = await send('/http/sendmail', {
      to: ['bob@contoso.example', { address: 'carol@contoso.example', name: 'Carol' }],
      cc: 'dave@contoso.example',
      subject: 'Invoice 4711',
      html: '<p>Please find the invoice attached.</p>',
      attachments: [{ name: 'invoice.txt', contentType: 'text/plain', contentBase64: Buffer.from('total: 42').toString('base64') }],
      saveToSentItems: false,
    });
    assert.equal(response.status, 202, await response.clone().text());
    const messageId = response.headers.get('sap_messageprocessinglogid');
    assert.ok(messageId);
    assert.equal(graph.sent.length, before + 1);
    const mail = graph.sent.at(-1)!;
    assert.equal(mail.user, 'alice@contoso.example');
    assert.equal(mail.saveToSentItems, false);
    const message = mail.message as Record<string, unknown>;
    assert.equal(message.subject, 'Invoice 4711');
    assert.deepEqual(message.body, { contentType: 'HTML', content: '<p>Please find the invoice attached.</p>' });
    assert.deepEqual(message.toRecipients, [{ emailAddress: { address: 'bob@contoso.example' } }, { emailAddress: { address: 'carol@contoso.example', name: 'Carol' } }]);
    assert.deepEqual(message.ccRecipients, [{ emailAddress: { address: 'dave@contoso.example' } }]);
    assert.equal((message.attachments as { name: string }[])[0].name, 'invoice.txt');
    const record = await waitFor(() => iflow.app.store.messageLogs.get(messageId), { what: 'message log' });
    assert.equal(record.Status, 'COMPLETED');
    assert.equal(record.IntegrationFlowName, 'send-mail');
  });

  test('send-mail: a ready Graph message passes through as it is', async () => {
    const message = { subject: 'Raw', body: { contentType: 'Text', content: 'hi' }, toRecipients: [{ emailAddress: { address: 'erin@contoso.example' } }] };
    const response = await send('/http/sendmail', { message });
    assert.equal(response.status, 202);
    assert.deepEqual(graph.sent.at(-1)!.message, message);
  });

  test('send-mail: requests that break the schema are 400 and never reach Graph', async () => {
    const before = graph.requestCount;
    for (const bad of [
      { subject: 'no recipient', text: 'x' },
      { to: 'not-an-address', subject: 's', text: 'x' },
      { to: 'a@b.c', subject: 's' },
      { to: 'a@b.c', subject: 's', text: 'x', attachments: [{ name: 'a', contentBase64: '***' }] },
      { to: 'a@b.c', subject: 's', text: 'x', colour: 'red' },
    ]) {
      const response = await send('/http/sendmail', bad);
      assert.equal(response.status, 400, JSON.stringify(bad));
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'SCHEMA_VIOLATION');
    }
    assert.equal(graph.requestCount, before);
  });

  test('send-mail-app: client credentials send from the given mailbox', async () => {
    const response = await send('/http/sendmail-app', { from: 'noreply@contoso.example', to: 'frank@contoso.example', subject: 'App mail', text: 'Hello' });
    assert.equal(response.status, 202, await response.clone().text());
    const mail = graph.sent.at(-1)!;
    assert.equal(mail.user, 'noreply@contoso.example');
    assert.equal((mail.message as { subject: string }).subject, 'App mail');
  });

  test('a Graph 401 on an http step with auth refreshes the token once and retries once', async () => {
    entra.expireAccessTokens();
    const refreshesBefore = entra.countTokenRequests('refresh_token');
    const graphBefore = graph.requestCount;
    const response = await send('/http/sendmail-auth', RAW_MAIL);
    assert.equal(response.status, 202, await response.clone().text());
    assert.equal(entra.countTokenRequests('refresh_token') - refreshesBefore, 1, 'exactly one refresh');
    assert.equal(graph.requestCount - graphBefore, 2, 'one refused call and one retry');
  });

  test('send-mail (token taken by the script): a Graph 401 refreshes that token once and sends once more', async () => {
    // Warm: the credential's cached token is the one the script hands on.
    assert.equal((await send('/http/sendmail', { to: 'i@contoso.example', subject: 'warm', text: 't' })).status, 202);
    entra.expireAccessTokens();
    const refreshesBefore = entra.countTokenRequests('refresh_token');
    const graphBefore = graph.requestCount;
    const response = await send('/http/sendmail', { to: 'i@contoso.example', subject: 'after expiry', text: 't' });
    assert.equal(response.status, 202, await response.clone().text());
    assert.equal(entra.countTokenRequests('refresh_token') - refreshesBefore, 1, 'exactly one refresh');
    assert.equal(graph.requestCount - graphBefore, 2, 'one refused call and one more with the fresh token');
    assert.equal((graph.sent.at(-1)!.message as { subject: string }).subject, 'after expiry');
  });

  test('send-mail: a throttled Graph (429 with Retry-After) is waited for and sent once more', async () => {
    graph.failNext(1, { status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfterSeconds: 0 });
    const graphBefore = graph.requestCount;
    const response = await send('/http/sendmail', { to: 'j@contoso.example', subject: 'throttled once', text: 't' });
    assert.equal(response.status, 202, await response.clone().text());
    assert.equal(graph.requestCount - graphBefore, 2);
    assert.equal((graph.sent.at(-1)!.message as { subject: string }).subject, 'throttled once');
  });

  test('a revoked grant fails messages at once with what to do, until the admin authorizes again', async () => {
    entra.revokeRefreshTokens({ errorCodes: [700082] });
    entra.expireAccessTokens();
    const refused = await send('/http/sendmail-auth', RAW_MAIL);
    assert.equal(refused.status, 503);
    const error = ((await refused.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'CREDENTIAL_REAUTHORIZATION_REQUIRED');
    assert.match(error.message, /Microsoft365_Mail.*authorize/);

    // The script path (send-mail) fails the same way, without asking Entra again.
    const tokenRequests = entra.countTokenRequests();
    const viaScript = await send('/http/sendmail', { to: 'h@contoso.example', subject: 's', text: 't' });
    assert.equal(viaScript.status, 503);
    assert.equal(((await viaScript.json()) as { error: { code: string } }).error.code, 'CREDENTIAL_REAUTHORIZATION_REQUIRED');
    assert.equal(entra.countTokenRequests(), tokenRequests, 'no token request while re-authorization is required');
    const read = (await (await admin('/api/v1/credentials/Microsoft365_Mail')).json()) as { status: string; lastError: { error: string; errorCodes: number[] } };
    assert.equal(read.status, 'reauthorization-required');
    assert.deepEqual([read.lastError.error, read.lastError.errorCodes], ['invalid_grant', [700082]]);

    await authorizeInBrowser();
    const again = await send('/http/sendmail', { to: 'h@contoso.example', subject: 's', text: 't' });
    assert.equal(again.status, 202, await again.clone().text());
  });

  test('a Graph refusing renewed tokens too costs one token refresh, then none for a while, until the admin authorizes again', async () => {
    const refusal = { status: 401, code: 'InvalidAuthenticationToken', message: 'Access token validation failure. Invalid audience.' };
    const mail = { to: 'k@contoso.example', subject: 'refused', text: 't' };
    assert.equal((await send('/http/sendmail', mail)).status, 202, 'warm');
    const refreshesBefore = entra.countTokenRequests('refresh_token');
    const graphBefore = graph.requestCount;

    // The token is refused, renewed once, and the renewed one refused too.
    graph.failNext(2, refusal);
    const first = await send('/http/sendmail', mail);
    assert.equal(first.status, 502);
    const error = ((await first.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'RECEIVER_ERROR');
    assert.match(error.message, /answered 401/);
    assert.equal(entra.countTokenRequests('refresh_token') - refreshesBefore, 1);
    assert.equal(graph.requestCount - graphBefore, 2);
    const warning = await waitFor(() => iflow.logs.records().find((r) => r.msg === RENEWAL_PAUSED));
    assert.equal(warning.credential, 'Microsoft365_Mail');
    assert.equal(warning.level, 40);

    // Further 401s from Graph, through the script's token or the step's auth:, renew nothing: each stands as Graph's answer.
    graph.failNext(2, refusal);
    assert.equal((await send('/http/sendmail', mail)).status, 502);
    assert.equal((await send('/http/sendmail-auth', RAW_MAIL)).status, 502);
    assert.equal(entra.countTokenRequests('refresh_token') - refreshesBefore, 1, 'no further refresh');
    assert.equal(graph.requestCount - graphBefore, 4, 'each sent once');

    // The admin fixes the app's permissions and authorizes again: a 401 renews the token at once.
    await authorizeInBrowser();
    graph.failNext(1, refusal);
    const after = await send('/http/sendmail', mail);
    assert.equal(after.status, 202, await after.clone().text());
    assert.equal(entra.countTokenRequests('refresh_token') - refreshesBefore, 2);
  });

  test('no secret reaches the logs', async () => {
    const text = iflow.logs.text;
    for (const secret of [CLIENT_SECRET, APP_SECRET, SENDER_PASSWORD, ...entra.issuedAccessTokens, ...entra.issuedRefreshTokens]) {
      assert.ok(!text.includes(secret), `logs must not contain ${secret.slice(0, 8)}…`);
    }
  });
});

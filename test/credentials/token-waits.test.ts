// How long a message waits for a token: at most a deadline inside a script step's default timeout, while a
// refresh it waited for goes on for the messages after it; and not at all while the token endpoint's Retry-After
// holds the credential's token requests back (the caller is told when to send again).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { startIflow, waitFor, type RunningIflow } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';
import { startReceiver } from '../support/receiver.ts';
import { api, createAndAuthorize, wire } from './helpers.ts';
import { MAX_NOT_BEFORE_MS, MESSAGE_TOKEN_DEADLINE_MS, TokenService, type TokenServiceOptions } from '../../src/credentials/token-service.ts';
import { CredentialVault } from '../../src/credentials/vault.ts';
import { DEFAULT_SCRIPT_TIMEOUT_MS } from '../../src/runtime/steps/index.ts';
import { loadMasterKey } from '../../src/security/crypto.ts';

describe('waiting for a token', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;
  let flows: ReturnType<typeof writeFlows>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const material = () => iflow.app.securityMaterial;
  /** A second token service over the same store, with its own clock or budgets; stopped after the tests. */
  const services: TokenService[] = [];
  const separateService = (options: Partial<TokenServiceOptions>) => {
    const service = new TokenService({
      vault: new CredentialVault(iflow.app.store.credentials, loadMasterKey({ dataDir: iflow.dataDir })),
      log: iflow.app.log,
      keepAliveMs: 0,
      ...options,
    });
    services.push(service);
    return service;
  };

  before(async () => {
    entra = await startFakeEntra();
    receiver = await startReceiver({ status: 202 });
    // send-mail's shape: a script takes the token from the secure store, an http step sends it.
    flows = writeFlows({
      throttled: {
        'flow.yaml': `sender: { path: /http/throttled }\nsteps:\n  - script: token.mjs\n  - http: { address: "${receiver.url}/in", requestHeaders: [Authorization] }\n`,
        'token.mjs': "export default async function (message, context) { const token = await context.secureStore.getAccessToken('Throttled'); message.setHeader('Authorization', 'Bearer ' + token.accessToken); }\n",
      },
    });
    iflow = await startIflow({ flowsDir: flows.dir });
    wire(iflow, entra);
  });

  after(async () => {
    entra.setTokenDelayMs(0);
    for (const service of services) await service.stop();
    await Promise.all([iflow.close(), entra.close(), receiver.close()]);
    flows.remove();
  });

  test("the default deadline leaves a script step's default timeout time to spare", () => {
    assert.ok(MESSAGE_TOKEN_DEADLINE_MS <= DEFAULT_SCRIPT_TIMEOUT_MS - 5000, `${MESSAGE_TOKEN_DEADLINE_MS} ms of ${DEFAULT_SCRIPT_TIMEOUT_MS} ms`);
  });

  test('a slow token endpoint: messages get 503 CREDENTIAL_TOKEN_UNAVAILABLE at the deadline; the one refresh goes on and serves the next', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'SlowEndpoint' });
    const token = await iflow.app.securityMaterial.getAccessToken(name);
    // The app's deadline is 20 s and a token request may take 20 s; this service has the same logic with a 300 ms deadline.
    const service = separateService({ messageDeadlineMs: 300 });
    entra.resetCounters();
    entra.setTokenDelayMs(1500);
    const started = Date.now();
    const results = await Promise.allSettled([service.getAccessToken(name, { rejectedToken: token.accessToken }), service.getAccessToken(name, { rejectedToken: token.accessToken })]);
    const waited = Date.now() - started;
    entra.setTokenDelayMs(0);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      const reason = (result as PromiseRejectedResult).reason as { code: string; statusCode: number; message: string };
      assert.equal(reason.code, 'CREDENTIAL_TOKEN_UNAVAILABLE');
      assert.equal(reason.statusCode, 503);
      assert.match(reason.message, new RegExp(`^Credential "${name}": no token within 300 ms \\(the token endpoint, or the store, did not answer in time\\); .*send the message again`));
    }
    assert.ok(waited < 1200, `waited ${waited} ms, not until the token endpoint answered`);
    assert.equal(entra.countTokenRequests(), 1, 'one refresh for both messages');

    // The refresh was not given up with them: its token is stored, and the next message gets it without asking again.
    await waitFor(() => iflow.logs.records().some((r) => r.msg === 'credential token refreshed' && r.credential === name), { what: 'the refresh to finish' });
    const next = await service.getAccessToken(name, { rejectedToken: token.accessToken });
    assert.notEqual(next.accessToken, token.accessToken);
    assert.equal(entra.validateAccessToken(next.accessToken).valid, true);
    assert.equal(entra.countTokenRequests(), 1);
  });

  test('429 with Retry-After while the token has expired: one token request, then messages fail at once with 503 and Retry-After', async () => {
    entra.setAccessTokenLifetimeSeconds(1);
    const name = await createAndAuthorize(iflow, entra, { name: 'Throttled' });
    entra.setAccessTokenLifetimeSeconds(3600);
    const stored = entra.issuedAccessTokens.at(-1)!;
    await waitFor(() => !entra.validateAccessToken(stored).valid, { timeoutMs: 3000, what: 'the access token to expire' });
    entra.resetCounters();
    entra.failNextTokenRequests(100, { status: 429, error: 'temporarily_unavailable', errorCodes: [50196], retryAfterSeconds: 60 });
    try {
      for (let i = 0; i < 4; i++) {
        const started = Date.now();
        const answer = await fetch(`${iflow.url}/http/throttled`, { method: 'POST', headers: { authorization: iflow.adminAuth }, signal: AbortSignal.timeout(5000) });
        const { error } = (await answer.json()) as { error: { code: string; message: string } };
        assert.equal(answer.status, 503, `message ${i + 1}`);
        assert.equal(error.code, 'CREDENTIAL_TOKEN_UNAVAILABLE');
        assert.match(error.message, /^Credential "Throttled": .*send the message again in \d+ s$/);
        const retryAfter = Number(answer.headers.get('retry-after'));
        assert.ok(retryAfter > 50 && retryAfter <= 60, `Retry-After: ${answer.headers.get('retry-after')}`);
        assert.ok(answer.headers.get('sap_messageprocessinglogid'));
        assert.ok(Date.now() - started < 2000, `message ${i + 1} waited ${Date.now() - started} ms`);
      }
    } finally {
      entra.failNextTokenRequests(0, { status: 429, error: 'x', errorCodes: [] });
    }
    assert.equal(entra.countTokenRequests(), 1, 'one token request while throttled, not one per message (AADSTS50196)');
    assert.equal(receiver.received.length, 0);
    // Transient: the status stays, what happened is shown.
    const read = await api(iflow, 'GET', `/api/v1/credentials/${name}`);
    assert.equal(read.json.status, 'authorized');
    assert.equal(read.json.lastError.error, 'temporarily_unavailable');
    assert.deepEqual(read.json.lastError.errorCodes, [50196]);
    assert.equal(read.json.lastError.httpStatus, 429);
  });

  test("Entra's loop detection (400 invalid_grant, AADSTS50196) without a Retry-After: no retry, the credential waits a minute", async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'LoopDetected' });
    const token = await material().getAccessToken(name);
    const service = separateService({ retryDelaysMs: [20, 50] });
    entra.resetCounters();
    entra.failNextTokenRequests(100, { status: 400, error: 'invalid_grant', errorCodes: [50196], description: 'AADSTS50196: The server terminated an operation because it encountered a client request loop.' });
    try {
      for (let i = 0; i < 3; i++) {
        const failure = await service.getAccessToken(name, { rejectedToken: token.accessToken }).then(
          () => assert.fail('a token while throttled'),
          (err: { code?: string; retryAfterSeconds?: number }) => err,
        );
        assert.equal(failure.code, 'CREDENTIAL_TOKEN_UNAVAILABLE', `call ${i + 1}`);
        assert.ok(failure.retryAfterSeconds !== undefined && failure.retryAfterSeconds > 50 && failure.retryAfterSeconds <= 60, `Retry-After ${failure.retryAfterSeconds}`);
      }
    } finally {
      entra.failNextTokenRequests(0, { status: 400, error: 'x', errorCodes: [] });
    }
    assert.equal(entra.countTokenRequests(), 1, 'one token request, no retry and none per call: asking again is what Entra throttles');
    assert.equal((await api(iflow, 'GET', `/api/v1/credentials/${name}`)).json.status, 'authorized');
  });

  test('a Retry-After is kept at most MAX_NOT_BEFORE_MS, keep-alive waits for it too, and a short one is waited for inside the message', async () => {
    const name = await createAndAuthorize(iflow, entra, { name: 'HeldBack' });
    const token = await material().getAccessToken(name);
    let offset = 0;
    const service = separateService({ now: () => Date.now() + offset, retryDelaysMs: [20, 50] });
    entra.resetCounters();
    entra.failNextTokenRequests(100, { status: 429, error: 'temporarily_unavailable', errorCodes: [], retryAfterSeconds: 86_400 });
    const capped = MAX_NOT_BEFORE_MS / 1000;
    await assert.rejects(service.getAccessToken(name, { rejectedToken: token.accessToken }), { code: 'CREDENTIAL_TOKEN_UNAVAILABLE', statusCode: 503, retryAfterSeconds: capped });
    assert.equal(entra.countTokenRequests(), 1, 'a Retry-After longer than a message can wait is not retried inside it');
    entra.failNextTokenRequests(0, { status: 429, error: 'x', errorCodes: [] });

    // Held back until then, by a day's Retry-After no longer than MAX_NOT_BEFORE_MS: no token request, from messages or keep-alive.
    offset = MAX_NOT_BEFORE_MS - 10_000;
    await assert.rejects(service.getAccessToken(name, { rejectedToken: token.accessToken }), (err: { code?: string; retryAfterSeconds?: number }) => {
      assert.equal(err.code, 'CREDENTIAL_TOKEN_UNAVAILABLE');
      assert.ok(err.retryAfterSeconds !== undefined && err.retryAfterSeconds > 0 && err.retryAfterSeconds <= 10, String(err.retryAfterSeconds));
      return true;
    });
    const report = await service.runKeepAlive({ olderThanMs: 0 });
    assert.ok(report.skipped.includes(name), JSON.stringify(report));
    assert.equal(entra.countTokenRequests(), 1 + report.refreshed.length + report.failed.length, 'keep-alive asked for none of its tokens');

    // Over: the next message refreshes.
    offset = MAX_NOT_BEFORE_MS + 1000;
    entra.resetCounters();
    const fresh = await service.getAccessToken(name, { rejectedToken: token.accessToken });
    assert.equal(entra.validateAccessToken(fresh.accessToken).valid, true);
    assert.equal(entra.countTokenRequests(), 1);

    // A Retry-After a message can wait (up to 10 s) is waited for, and the retry gets the token.
    entra.resetCounters();
    entra.failNextTokenRequests(1, { status: 429, error: 'temporarily_unavailable', errorCodes: [], retryAfterSeconds: 1 });
    const started = Date.now();
    const after = await service.getAccessToken(name, { rejectedToken: fresh.accessToken });
    assert.ok(Date.now() - started >= 900, `retried after ${Date.now() - started} ms`);
    assert.equal(entra.validateAccessToken(after.accessToken).valid, true);
    assert.equal(entra.countTokenRequests(), 2);
  });
});

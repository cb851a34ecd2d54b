// How long a message waits for a token: at most a deadline inside a script step's default timeout, while a
// refresh it waited for goes on for the messages after it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { startIflow, waitFor, type RunningIflow } from '../support/iflow.ts';
import { createAndAuthorize, wire } from './helpers.ts';
import { MESSAGE_TOKEN_DEADLINE_MS, TokenService, type TokenServiceOptions } from '../../src/credentials/token-service.ts';
import { CredentialVault } from '../../src/credentials/vault.ts';
import { DEFAULT_SCRIPT_TIMEOUT_MS } from '../../src/runtime/steps/index.ts';
import { loadMasterKey } from '../../src/security/crypto.ts';

describe('waiting for a token', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;
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
    iflow = await startIflow();
    wire(iflow, entra);
  });

  after(async () => {
    entra.setTokenDelayMs(0);
    for (const service of services) await service.stop();
    await Promise.all([iflow.close(), entra.close()]);
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
      assert.match(reason.message, new RegExp(`^Credential "${name}": the token endpoint gave no token within 300 ms; .*send the message again`));
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
});

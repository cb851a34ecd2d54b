// A receiver that refuses a renewed token too pauses renewing for its 401s: per credential and receiver,
// through flows with an http step's own auth:, after retries, and with many messages at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeEntra, type FakeEntra } from '../support/fake-entra.ts';
import { startIflow, type RunningIflow } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';
import { startReceiver } from '../support/receiver.ts';
import { RENEWAL_PAUSED, createAndAuthorize, wire } from './helpers.ts';

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const bearerOf = (authorization: unknown) => String(authorization ?? '').replace(/^Bearer /, '');

describe('renewing a token for a receiver that refused the renewed one too', () => {
  let entra: FakeEntra;
  let iflow: RunningIflow;
  let flows: ReturnType<typeof writeFlows>;
  /** Answers 401 to every token (a token for another audience). */
  let refusing: Receiver;
  /** Accepts every token except those in `revoked`. */
  let healthy: Receiver;
  const revoked = new Set<string>();
  /** 401, then 429 (Retry-After: 0), then 401 … : refuses every token and throttles between. */
  let throttling: Receiver;
  let throttlingCalls = 0;

  before(async () => {
    entra = await startFakeEntra();
    refusing = await startReceiver({ status: 401, body: { error: { code: 'InvalidAuthenticationToken', message: 'Invalid audience.' } } });
    healthy = await startReceiver((request) => (revoked.has(bearerOf(request.headers.authorization)) ? { status: 401 } : { status: 200, body: { ok: true } }));
    throttling = await startReceiver(() => (throttlingCalls++ % 2 === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 401 }));
    const flow = (path: string, url: string, credential: string, extra = '') => ({
      'flow.yaml': `sender: { path: ${path} }\nsteps:\n  - http: { address: "${url}/in", auth: { oauth2AuthorizationCode: ${credential} }${extra} }\n`,
    });
    flows = writeFlows({
      refusing: flow('/http/refusing', refusing.url, 'Shared'),
      healthy: flow('/http/healthy', healthy.url, 'Shared'),
      refusingOther: flow('/http/refusing-other', refusing.url, 'Other'),
      throttling: flow('/http/throttling', throttling.url, 'Throttled', ', retry: { attempts: 1, delay: 10ms }'),
      crowd: flow('/http/crowd', refusing.url, 'Crowd'),
    });
    iflow = await startIflow({ flowsDir: flows.dir });
    wire(iflow, entra);
    for (const name of ['Shared', 'Other', 'Throttled', 'Crowd']) await createAndAuthorize(iflow, entra, { name });
  });

  after(async () => {
    await iflow.close();
    await Promise.all([entra.close(), refusing.close(), healthy.close(), throttling.close()]);
    flows.remove();
  });

  const call = (path: string) => fetch(`${iflow.url}${path}`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  const pauses = (credential: string) => iflow.logs.records().filter((r) => r.msg === RENEWAL_PAUSED && r.credential === credential);

  test("an http step's auth: starts the pause; other receivers of the credential, and other credentials, still renew", async () => {
    entra.resetCounters();
    const refused = await call('/http/refusing');
    assert.equal(refused.status, 502);
    assert.equal(entra.countTokenRequests('refresh_token'), 1, 'one renewal');
    assert.equal(refusing.received.length, 2, 'sent with the token and with the renewed one');
    assert.deepEqual(pauses('Shared').map((r) => [r.level, r.receiver]), [[40, new URL(refusing.url).host]]);

    // Paused there: the next 401 from that receiver renews nothing.
    assert.equal((await call('/http/refusing')).status, 502);
    assert.equal(entra.countTokenRequests('refresh_token'), 1);
    assert.equal(refusing.received.length, 3);

    // The healthy receiver refuses the current token once (revoked on its side): renewing helps there, and happens.
    revoked.add((await iflow.app.securityMaterial.getAccessToken('Shared')).accessToken);
    const recovered = await call('/http/healthy');
    assert.equal(recovered.status, 200, await recovered.clone().text());
    assert.equal(entra.countTokenRequests('refresh_token'), 2);
    assert.equal(healthy.received.length, 2);

    // Another credential at the refusing receiver renews once, then is paused itself.
    assert.equal((await call('/http/refusing-other')).status, 502);
    assert.equal(entra.countTokenRequests('refresh_token'), 3);
    assert.equal(pauses('Other').length, 1);
  });

  test('a throttled retry between the renewed token and its 401 still starts the pause', async () => {
    entra.resetCounters();
    for (let i = 0; i < 3; i++) assert.equal((await call('/http/throttling')).status, 502);
    assert.equal(entra.countTokenRequests('refresh_token'), 1, 'one renewal for three messages');
    assert.equal(pauses('Throttled').length, 1);
  });

  test('many messages at once share one renewal and one warning', async () => {
    entra.resetCounters();
    entra.setTokenDelayMs(100);
    const before = refusing.received.length;
    try {
      const statuses = await Promise.all(Array.from({ length: 30 }, async () => (await call('/http/crowd')).status));
      assert.ok(statuses.every((status) => status === 502), JSON.stringify(statuses));
    } finally {
      entra.setTokenDelayMs(0);
    }
    assert.equal(entra.countTokenRequests('refresh_token'), 1);
    assert.equal(pauses('Crowd').length, 1);
    // Each message sent at most twice: its token, then the shared renewed one (a message that starts after the
    // renewal already carries the renewed token and, refused once the pause began, is sent once).
    const sent = refusing.received.length - before;
    assert.ok(sent > 30 && sent <= 60, `${sent} requests for 30 messages`);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startIflow, waitFor } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';
import { SKIP_POSTGRES_OPTION, TestSchemas } from '../support/postgres.ts';
import { startReceiver } from '../support/receiver.ts';
import { api } from './helpers.ts';

const decoded = (authorization: unknown) => Buffer.from(String(authorization).replace(/^Basic /, ''), 'base64').toString('utf8');

test('two instances on one PostgreSQL: a credential changed or deleted through one is used or refused by the other at once', SKIP_POSTGRES_OPTION, async (t) => {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { schema, url } = await schemas.create();
  const receiver = await startReceiver({ status: 202 });
  t.after(() => receiver.close());
  const flows = writeFlows({
    relay: {
      'flow.yaml': `id: relay\nsender: { path: /http/relay, method: POST, role: admin }\nsteps:\n  - http: { address: "${receiver.url}/in", auth: { basic: Partner_Basic } }\n`,
    },
  });
  t.after(() => flows.remove());
  // Both decrypt the secrets with the same key, as instances of one installation do.
  const env = { DATABASE_URL: url, IFLOW_MASTER_KEY: randomBytes(32).toString('base64') };
  const one = await startIflow({ flowsDir: flows.dir, env });
  t.after(() => one.close());
  const two = await startIflow({ flowsDir: flows.dir, env });
  t.after(() => two.close());

  const relayThroughTwo = async () => {
    const answer = await fetch(`${two.url}/http/relay`, { method: 'POST', headers: { authorization: two.adminAuth }, body: 'x' });
    return { status: answer.status, sent: answer.status === 202 ? decoded(receiver.received.at(-1)!.headers.authorization) : undefined, body: await answer.text() };
  };

  assert.equal((await api(one, 'POST', '/api/v1/credentials', { name: 'Partner_Basic', type: 'basic', user: 'partner', password: 'first-secret' })).status, 201);
  // Both listen before anything is cached: a listener that starts later drops every cache when it does,
  // which would let this test pass without any announcement.
  await waitFor(async () => (await schemas.listeners(schema)).length === 2, { what: 'both instances to listen' });
  assert.deepEqual((await relayThroughTwo()).sent, 'partner:first-secret', 'the other instance reads and caches it');

  assert.equal((await api(one, 'PUT', '/api/v1/credentials/Partner_Basic', { type: 'basic', user: 'partner', password: 'second-secret' })).status, 200);
  // Bounded far below the minute a basic credential is cached: only the announcement can make this pass.
  await waitFor(async () => (await relayThroughTwo()).sent === 'partner:second-secret', { timeoutMs: 5000, what: 'the other instance to send the new password' });

  assert.equal((await api(one, 'DELETE', '/api/v1/credentials/Partner_Basic')).status, 204);
  const refused = await waitFor(async () => {
    const attempt = await relayThroughTwo();
    return attempt.status !== 202 ? attempt : undefined;
  }, { timeoutMs: 5000, what: 'the deleted credential to be refused by the other instance' });
  assert.equal(refused.status, 500, 'a flow naming a credential that does not exist is a configuration error');
  assert.equal(JSON.parse(refused.body).error.code, 'CREDENTIAL_NOT_FOUND');
  assert.ok(!two.logs.text.includes('second-secret') && !one.logs.text.includes('second-secret'), 'no password in the logs');
});

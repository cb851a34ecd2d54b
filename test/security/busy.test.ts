import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, fetch } from 'undici';
import { basicAuth, startIflowWithFlows, waitFor } from '../support/iflow.ts';

test('a flood of guessed passwords meets a bound: the excess gets 503 busy at once, cached callers go on, the log warns at once', async (t) => {
  const iflow = await startIflowWithFlows(t, { hello: { 'flow.yaml': 'id: hello\nsender: { path: /http/hello, method: POST, role: admin }\nsteps:\n  - set: { body: "hi" }\n' } });
  // One connection per request, opened at once: the guesses arrive together, not one after another.
  const agent = new Agent({ connections: 256 });
  t.after(() => agent.close());
  const post = (authorization: string) => fetch(`${iflow.url}/http/hello`, { method: 'POST', headers: { authorization }, body: 'x', dispatcher: agent });
  assert.equal((await post(iflow.adminAuth)).status, 200, 'the admin login is verified and cached');

  const guesses = Array.from({ length: 160 }, (_, i) => post(basicAuth('admin', `guess-${i}`)));
  const cached = post(iflow.adminAuth);
  const answers = await Promise.all(guesses);
  assert.equal((await cached).status, 200, 'a cached login is served during the flood');

  const byStatus = new Map<number, number>();
  for (const answer of answers) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
  assert.deepEqual([...byStatus.keys()].sort(), [401, 503], 'each guess is refused as wrong or as busy, nothing else');
  assert.ok(byStatus.get(401)! >= 16 + 64, 'at least as many verified as may run and wait at once');
  const busy = answers.find((answer) => answer.status === 503)!;
  assert.equal(busy.headers.get('retry-after'), '1');
  assert.deepEqual(await busy.json(), { error: { code: 'AUTHENTICATION_BUSY', message: 'Too many logins are being verified right now: retry in a second' } });

  await waitFor(() => iflow.app.authenticator.verificationsRunning === 0, { what: 'the verifications to finish' });
  assert.equal((await post(basicAuth('admin', 'guess-after'))).status, 401, 'after the flood a login is verified again');
  const warnings = iflow.logs.records().filter((r) => r.msg === 'too many logins being verified at once: new ones refused with 503');
  assert.equal(warnings.length, 1, 'one warning for the whole flood');
  assert.equal(warnings[0].level, 40);
  assert.equal(warnings[0].running, 16);
  assert.ok(!iflow.logs.text.includes('guess-') && !iflow.logs.text.includes(Buffer.from('admin:guess-').toString('base64').slice(0, 12)), 'no guessed password in the log');

  // The other refusals are counted: in a line every 10 s while they go on, at the latest when the app closes.
  await iflow.close();
  const counted = iflow.logs.records().filter((r) => r.msg === 'logins still refused with 503: too many being verified at once');
  assert.equal(counted.reduce((sum, line) => sum + (line.count as number), 0), byStatus.get(503)! - 1);
});

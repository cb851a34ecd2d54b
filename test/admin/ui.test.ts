import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basicAuth, startIflowWithFlows, waitFor } from '../support/iflow.ts';

test('the admin UI shows flows, credentials with Authorize links and the latest messages, escaped', async (t) => {
  const iflow = await startIflowWithFlows(t, {
    hello: { 'flow.yaml': 'sender: { path: /http/hello }\nsteps:\n  - name: Say <b>hi</b>\n    set: { body: hi }\n' },
    broken: { 'flow.yaml': 'sender: { path: /http/x, colour: "<script>" }\nsteps:\n  - set: { body: x }\n' },
  });
  const json = { authorization: iflow.adminAuth, 'content-type': 'application/json' };
  await fetch(`${iflow.url}/api/v1/credentials`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ name: 'Mail', type: 'oauth2-authorization-code', provider: 'microsoft365', tenant: 'contoso.example', clientId: 'id-1', clientSecret: 'ui-secret-never-shown', scope: 'Mail.Send' }),
  });
  await fetch(`${iflow.url}/api/v1/users`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'watcher', password: 'watcher-password', roles: ['monitor'] }) });
  await fetch(`${iflow.url}/http/hello`, { method: 'POST', headers: { authorization: iflow.adminAuth } });

  const page = await fetch(`${iflow.url}/`, { headers: { authorization: iflow.adminAuth } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const html = await page.text();
  assert.match(html, /<title>Overview – iflow<\/title>/);
  // The page's own calls to the API are logged as completed, not as connections that dropped.
  await waitFor(() => iflow.logs.records().filter((r) => r.msg === 'request completed' && r.res && (r.res as { statusCode: number }).statusCode === 200).length >= 3, { what: 'the request lines' });
  assert.deepEqual(iflow.logs.records().filter((r) => r.msg === 'connection closed before the reply was sent'), []);
  assert.match(html, /POST \/http\/hello/);
  assert.match(html, /Say &#60;b&#62;hi&#60;\/b&#62; \(set\)/, 'step names are escaped');
  assert.match(html, /unknown property/);
  assert.ok(!html.includes('<script'), 'nothing unescaped from flow files');
  assert.match(html, /href="\/api\/v1\/credentials\/Mail\/authorize"/);
  assert.match(html, /unauthorized/);
  assert.match(html, /COMPLETED/);
  assert.ok(!html.includes('ui-secret-never-shown'));

  const monitor = await (await fetch(`${iflow.url}/`, { headers: { authorization: basicAuth('watcher', 'watcher-password') } })).text();
  assert.match(monitor, /POST \/http\/hello/);
  assert.match(monitor, /Credentials are shown to administrators/);
  assert.ok(!monitor.includes('/authorize'));

  const anonymous = await fetch(`${iflow.url}/`);
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /Basic/);
});

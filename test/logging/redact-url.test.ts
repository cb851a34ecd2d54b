import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactUrl } from '../../src/logging/index.ts';

test('redactUrl replaces the values of query parameters named like secrets, and keeps the rest', () => {
  const secretNames = [
    'code', 'state', 'token', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'client_assertion', 'code_verifier',
    'password', 'pwd', 'passwd', 'secret', 'key', 'api_key', 'api-key', 'apikey', 'subscription-key', 'Ocp-Apim-Subscription-Key',
    'auth', 'authorization', 'sig', 'signature', 'X-Amz-Signature', 'X-Goog-Signature', 'X-Amz-Credential', 'X-Amz-Security-Token',
    'hmac', 'jwt', 'session', 'sessionid', 'credential', 'x-api%2Dkey', 'pass', 'pw', 'passphrase', 'bearer', 'cookie', 'code[]',
    'code%5B%5D', 'token[0]', 'user[password]', 'data[secret]', 'creds[api_key]', 'a[b][token]',
  ];
  for (const name of secretNames) {
    assert.equal(redactUrl(`/api/v1/flows?a=1&${name}=V-${name}&b=2`), `/api/v1/flows?a=1&${name}=[Redacted]&b=2`, name);
    assert.equal(redactUrl(`/x?${name}=V#frag`), `/x?${name}=[Redacted]#frag`, `${name} first`);
  }
  for (const url of ['/api/v1/MessageProcessingLogs?$filter=Status%20eq%20%27FAILED%27&$top=5', '/x?name=Ada&code_list=1', '/x?statement=1', '/x?page=2&pwa=1', '/plain', 'a=b']) {
    assert.equal(redactUrl(url), url, url);
  }
  assert.equal(redactUrl('/x?%zz=1&token=t'), '/x?%zz=1&token=[Redacted]', 'a name that does not decode is left as it is');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSensitiveHeader } from '../../src/security/redact.ts';

test('isSensitiveHeader: names with a credential word, in any case or spelling; not names that merely contain one', () => {
  for (const name of [
    'Authorization',
    'proxy-authorization',
    'Cookie',
    'Set-Cookie',
    'X-API-Key',
    'x-api-key',
    'Ocp-Apim-Subscription-Key',
    'X-Auth-Token',
    'X-Amz-Security-Token',
    'X-Session-Id',
    'apiKey',
    'X_Client_Secret',
    'X-Password',
    'Idempotency-Key',
    'X-Authtoken',
    'X-Accesskey',
    'X-Clientsecret',
    'X-Apitoken',
  ]) {
    assert.equal(isSensitiveHeader(name), true, name);
  }
  for (const name of ['X-Monkey', 'X-Keyword', 'WWW-Authenticate', 'Content-Type', 'request-id', 'X-Tokenizer-Version', 'Keep-Alive', 'X-Author']) {
    assert.equal(isSensitiveHeader(name), false, name);
  }
  // Asked again (from the cache of names seen), the answers stay.
  assert.equal(isSensitiveHeader('X-API-Key'), true);
  assert.equal(isSensitiveHeader('X-Monkey'), false);
});

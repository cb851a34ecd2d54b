import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSensitiveHeader } from '../../src/security/redact.ts';

test('isSensitiveHeader: any name with a credential word in it, however spelt; only standard headers that are not credentials are let through', () => {
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
    'appkey',
    'X-Authentication',
    'X-Authz',
    'Cookie2',
    'api-keys',
    'X-Token2',
    'X-Pwd',
    'X-JWT-Assertion',
    'X-Hub-Signature-256',
    'X-Passphrase',
    // Fail closed: names that merely contain a credential word are held back too.
    'X-Monkey',
    'X-Author',
  ]) {
    assert.equal(isSensitiveHeader(name), true, name);
  }
  for (const name of ['WWW-Authenticate', 'www-authenticate', 'Proxy-Authenticate', 'Authentication-Info', 'Access-Control-Allow-Credentials', 'Sec-WebSocket-Key', 'Content-Type', 'request-id', 'Keep-Alive', 'X-Request-Id']) {
    assert.equal(isSensitiveHeader(name), false, name);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { secureStoreFor, type SecurityMaterial } from '../../src/runtime/context.ts';

test('the secure store tells of every secret it hands a script: tokens (also under CPI\'s name), passwords and their Basic form', async () => {
  const material: SecurityMaterial = {
    getAccessToken: async (name) => ({ accessToken: `token-of-${name}`, tokenType: 'Bearer', expiresAt: '2030-01-01T00:00:00Z' }),
    getUserCredential: async () => ({ user: 'partner', password: 'partner-password-1' }),
    renewedTokenRefused: () => {},
  };
  const handedOut: string[] = [];
  const issued: string[] = [];
  const store = secureStoreFor(material, { handedOut: (secret) => handedOut.push(secret), tokenIssued: (token, credential) => issued.push(`${credential}:${token}`) });
  assert.equal((await store.getAccessToken('Mail')).accessToken, 'token-of-Mail');
  assert.equal((await store.getAccesTokenForOauth2AuthorizationCodeCredential('Graph')).accessToken, 'token-of-Graph');
  assert.equal((await store.getUserCredential('Partner')).password, 'partner-password-1');
  assert.deepEqual(handedOut, ['token-of-Mail', 'token-of-Graph', 'partner-password-1', Buffer.from('partner:partner-password-1').toString('base64')]);
  assert.deepEqual(issued, ['Mail:token-of-Mail', 'Graph:token-of-Graph'], 'access tokens with their credential, for an http step to renew');
});

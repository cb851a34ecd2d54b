import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { declaredParameters, secureStoreFor, type SecurityMaterial } from '../../src/runtime/context.ts';

test('the secure store tells of every secret it hands a script: tokens (also under CPI\'s name), passwords and their Basic form', async () => {
  const material: SecurityMaterial = {
    getAccessToken: async (name) => ({ accessToken: `token-of-${name}`, tokenType: 'Bearer', expiresAt: '2030-01-01T00:00:00Z' }),
    getUserCredential: async () => ({ user: 'partner', password: 'partner-password-1' }),
  };
  const handedOut: string[] = [];
  const store = secureStoreFor(material, (secret) => handedOut.push(secret));
  assert.equal((await store.getAccessToken('Mail')).accessToken, 'token-of-Mail');
  assert.equal((await store.getAccesTokenForOauth2AuthorizationCodeCredential('Graph')).accessToken, 'token-of-Graph');
  assert.equal((await store.getUserCredential('Partner')).password, 'partner-password-1');
  assert.deepEqual(handedOut, ['token-of-Mail', 'token-of-Graph', 'partner-password-1', Buffer.from('partner:partner-password-1').toString('base64')]);
});

test("a script's parameters: declared ones read as usual, an undeclared one throws naming the declared", async () => {
  const parameters = declaredParameters({ SHOP: 'berlin', RECEIVER_URL: 'http://127.0.0.1:1' });
  assert.equal(parameters.SHOP, 'berlin');
  assert.throws(() => parameters.SHOPP, { message: 'context.parameters.SHOPP is not a parameter of this flow (declared: SHOP, RECEIVER_URL)' });
  assert.throws(() => {
    const { SHOPP } = parameters;
    return SHOPP;
  }, /SHOPP is not a parameter/);
  // What JavaScript itself asks of any object still works.
  assert.equal(JSON.stringify(parameters), '{"SHOP":"berlin","RECEIVER_URL":"http://127.0.0.1:1"}');
  assert.deepEqual({ ...parameters }, { SHOP: 'berlin', RECEIVER_URL: 'http://127.0.0.1:1' });
  assert.deepEqual(Object.keys(parameters), ['SHOP', 'RECEIVER_URL']);
  assert.equal('SHOPP' in parameters, false);
  assert.equal(Object.hasOwn(parameters, 'SHOP'), true);
  // eslint-disable-next-line no-prototype-builtins -- a ported script may well call it
  assert.equal(parameters.hasOwnProperty('SHOPP'), false);
  assert.equal(String(parameters), '[object Object]');
  assert.equal(await Promise.resolve(parameters), parameters, 'awaiting it asks for then');
  assert.match(inspect(parameters), /SHOP: 'berlin'/);
  assert.throws(() => {
    (parameters as Record<string, string>).SHOP = 'x';
  }, TypeError);
  assert.equal(declaredParameters({}).toString(), '[object Object]');
  assert.throws(() => declaredParameters({}).ANY, { message: 'context.parameters.ANY is not a parameter of this flow (declared: none)' });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DecryptionError, MasterKey, keyIdOf } from '../../src/security/crypto.ts';
import { classifyTokenError, errorDetails, scrub, userFromIdToken } from '../../src/credentials/token-endpoint.ts';
import { refreshMarginMs } from '../../src/credentials/token-service.ts';
import { effectiveScope, endpointsOf, identityOf } from '../../src/credentials/providers.ts';
import { CredentialError, failingStatusError } from '../../src/credentials/types.ts';
import { HttpError } from '../../src/errors.ts';

const source = { kind: 'env' as const, generated: false };

describe('crypto', () => {
  test('AES-256-GCM round trip, self-describing, bound to its context', () => {
    const key = new MasterKey(randomBytes(32), source);
    const blob = key.encrypt('{"clientSecret":"s3cret"}', 'credential:A');
    assert.match(blob, /^v1\.[0-9a-f]{12}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    assert.equal(keyIdOf(blob), key.keyId);
    assert.ok(!blob.includes('s3cret'));
    assert.equal(key.decrypt(blob, 'credential:A'), '{"clientSecret":"s3cret"}');
    assert.notEqual(key.encrypt('x', 'c'), key.encrypt('x', 'c'), 'fresh IV every time');
    assert.throws(() => key.decrypt(blob, 'credential:B'), DecryptionError, 'a blob moved to another record does not decrypt');
    const tampered = blob.slice(0, -2) + (blob.endsWith('A') ? 'BB' : 'AA');
    assert.throws(() => key.decrypt(tampered, 'credential:A'), DecryptionError);
    const other = new MasterKey(randomBytes(32), source);
    assert.notEqual(other.keyId, key.keyId);
    assert.throws(() => other.decrypt(blob, 'credential:A'), /another master key/);
    assert.throws(() => key.decrypt('plain text', 'credential:A'), DecryptionError);
    assert.throws(() => new MasterKey(randomBytes(16), source), /32 bytes/);
  });
});

describe('token endpoint errors → credential status (MICROSOFT.md table)', () => {
  const table: [number, string, number[], string][] = [
    [400, 'invalid_grant', [70008], 'reauthorization-required'],
    [400, 'invalid_grant', [700082], 'reauthorization-required'],
    [400, 'invalid_grant', [700084], 'reauthorization-required'],
    [400, 'invalid_grant', [50173], 'reauthorization-required'],
    [400, 'invalid_grant', [50076], 'reauthorization-required'],
    [400, 'invalid_grant', [50079], 'reauthorization-required'],
    [400, 'invalid_grant', [50078], 'reauthorization-required'],
    [400, 'invalid_grant', [70043], 'reauthorization-required'],
    [400, 'invalid_grant', [54005], 'reauthorization-required'],
    [400, 'interaction_required', [], 'reauthorization-required'],
    [400, 'invalid_grant', [], 'reauthorization-required'],
    [400, 'invalid_grant', [65001], 'consent-required'],
    [400, 'invalid_grant', [65004], 'consent-required'],
    [400, 'consent_required', [], 'consent-required'],
    [401, 'invalid_client', [], 'misconfigured'],
    [401, 'invalid_client', [7000222], 'misconfigured'],
    [401, 'invalid_client', [7000215], 'misconfigured'],
    [400, 'unauthorized_client', [700016], 'misconfigured'],
    [400, 'invalid_grant', [50011], 'misconfigured'],
    [400, 'invalid_request', [70004], 'misconfigured'],
    [400, 'invalid_scope', [70011], 'misconfigured'],
    [400, 'unauthorized_client', [], 'misconfigured'],
    [400, 'invalid_grant', [53003], 'blocked'],
    [400, 'invalid_grant', [53000], 'blocked'],
    [400, 'invalid_grant', [53001], 'blocked'],
    [400, 'invalid_grant', [50057], 'blocked'],
    [400, 'invalid_grant', [50053], 'blocked'],
    [400, 'temporarily_unavailable', [], 'transient'],
    [400, 'server_error', [], 'transient'],
    [503, 'invalid_request', [], 'transient'],
    [500, '', [], 'transient'],
    [429, '', [], 'transient'],
    // "Loop detected" is throttling, even when it comes as invalid_grant: the grant is fine.
    [400, 'invalid_grant', [50196], 'transient'],
    [400, 'invalid_request', [50196], 'transient'],
  ];
  for (const [status, error, codes, expected] of table) {
    test(`${status} ${error} ${codes.join(',')} → ${expected}`, () => {
      assert.equal(classifyTokenError(status, error || undefined, codes), expected);
    });
  }
  test('no answer at all is transient', () => assert.equal(classifyTokenError(undefined, undefined, []), 'transient'));
});

describe('helpers', () => {
  test('refresh margin: 5 minutes, or a tenth of the lifetime when shorter', () => {
    assert.equal(refreshMarginMs(3600_000), 300_000);
    assert.equal(refreshMarginMs(600_000), 60_000);
    assert.equal(refreshMarginMs(1000), 100);
  });

  test('user from the id_token (decoded, not verified)', () => {
    const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
    assert.equal(userFromIdToken(jwt({ preferred_username: 'a@b.c', upn: 'x' })), 'a@b.c');
    assert.equal(userFromIdToken(jwt({ upn: 'u@b.c' })), 'u@b.c');
    assert.equal(userFromIdToken(jwt({ email: 'e@b.c' })), 'e@b.c');
    assert.equal(userFromIdToken(jwt({ sub: 'x' })), undefined);
    assert.equal(userFromIdToken('garbage'), undefined);
    assert.equal(userFromIdToken(undefined), undefined);
  });

  test('descriptions are scrubbed of the values sent, in every form a server may echo them', () => {
    assert.equal(scrub('bad token abcdef123 given', ['abcdef123']), 'bad token [Redacted] given');
    const secret = 'Ab3~kQ8.x_Z9<p>&s"e';
    const basic = Buffer.from(`client-id:${encodeURIComponent(secret)}`).toString('base64');
    for (const echoed of [
      `Basic ${basic}`,
      `authorization=Basic%20${basic}`,
      `hdr:Basic${basic}`,
      `url-safe ${basic.replaceAll('+', '-').replaceAll('/', '_')}`,
      `form client_secret=${new URLSearchParams([['', secret]]).toString().slice(1)}`,
      `json {"client_secret":${JSON.stringify(secret)}}`,
      `html <p>${secret.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')}</p>`,
      `hex ${Buffer.from(secret).toString('hex')}`,
      `alone ${Buffer.from(`x${secret}`).toString('base64')}`,
    ]) {
      const scrubbed = scrub(echoed, [secret])!;
      assert.match(scrubbed, /\[Redacted\]/, echoed);
      for (const part of [secret, secret.slice(0, 8), basic.slice(8, 20)]) assert.ok(!scrubbed.includes(part), `${scrubbed} holds ${part}`);
    }
    // A long answer is cut before it is scrubbed, and shown to 2000 characters.
    assert.equal(scrub(`${'x'.repeat(1_000_000)} ${secret}`, [secret])!.length, 2001);
  });

  test("an error body's trace and correlation ids are scrubbed and bounded like its description", () => {
    const secret = 'refresh-Token-Echoed-9';
    const details = errorDetails(400, { error: 'invalid_grant', error_description: `no ${secret}`, trace_id: `trace ${secret}`, correlation_id: `${'c'.repeat(500)}` }, 'refresh_token', [secret]);
    assert.equal(details.description, 'no [Redacted]');
    assert.equal(details.traceId, 'trace [Redacted]');
    assert.equal(details.correlationId, 'c'.repeat(200));
    assert.equal(errorDetails(400, { error: 'invalid_grant' }, 'refresh_token', [secret], 'client-request-id').correlationId, 'client-request-id');
  });

  test('microsoft365 endpoints, scope and identity', () => {
    assert.deepEqual(endpointsOf({ provider: 'microsoft365', tenant: 'common' }), {
      authorizationUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
      tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    });
    assert.equal(effectiveScope('oauth2-authorization-code', { tenant: 't', scope: 'Mail.Send' }), 'Mail.Send offline_access');
    assert.equal(effectiveScope('oauth2-authorization-code', { provider: 'generic', scope: 'Mail.Send' }), 'Mail.Send');
    const a = identityOf({ type: 'oauth2-authorization-code', settings: { tenant: 't', clientId: 'c', scope: 'Mail.Send' } });
    assert.equal(a, identityOf({ type: 'oauth2-authorization-code', settings: { tenant: 't', clientId: 'c', scope: 'Mail.Send offline_access', description: 'x' } }));
    assert.notEqual(a, identityOf({ type: 'oauth2-authorization-code', settings: { tenant: 't', clientId: 'd', scope: 'Mail.Send' } }));
    // The same scopes in another order, spacing or repeated are the same grant; another case is not (RFC 6749 §3.3).
    const b = identityOf({ type: 'oauth2-authorization-code', settings: { tenant: 't', clientId: 'c', scope: 'User.Read Mail.Send' } });
    assert.equal(b, identityOf({ type: 'oauth2-authorization-code', settings: { tenant: 't', clientId: 'c', scope: ' offline_access  Mail.Send User.Read Mail.Send' } }));
    assert.notEqual(b, identityOf({ type: 'oauth2-authorization-code', settings: { tenant: 't', clientId: 'c', scope: 'user.read Mail.Send' } }));
  });

  test('CredentialError is an HttpError with a code, a status code and the credential', () => {
    const err = failingStatusError('X', 'reauthorization-required', { error: 'invalid_grant', errorCodes: [700082], at: 'now' });
    assert.ok(err instanceof CredentialError && err instanceof HttpError && err instanceof Error);
    assert.equal(err.statusCode, 503);
    assert.equal(err.code, 'CREDENTIAL_REAUTHORIZATION_REQUIRED');
    assert.equal(err.credential, 'X');
    assert.equal(err.credentialStatus, 'reauthorization-required');
    assert.equal(err.message, 'Credential "X" must be re-authorized (invalid_grant, AADSTS700082): an admin opens /api/v1/credentials/X/authorize');
  });
});

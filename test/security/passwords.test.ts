import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { generatePassword, hashPassword, verifyPassword } from '../../src/security/passwords.ts';

test('hashPassword produces a self-describing scrypt hash that never holds the password', async () => {
  const hash = await hashPassword('correct horse battery staple');
  const parts = hash.split('$');
  assert.equal(parts.length, 6, hash);
  const [scheme, n, r, p, salt, key] = parts;
  assert.equal(scheme, 'scrypt');
  assert.ok(Number(n) >= 1 << 14, `scrypt cost N=${n} is too low`);
  assert.ok(Number.isInteger(Math.log2(Number(n))), 'N is a power of two');
  assert.ok(Number(r) >= 8);
  assert.ok(Number(p) >= 1);
  assert.equal(Buffer.from(salt, 'base64').length, 16);
  assert.equal(Buffer.from(key, 'base64').length, 32);
  assert.ok(!hash.includes('correct horse'));
});

test('the same password hashes differently every time (random salt)', async () => {
  const [a, b] = await Promise.all([hashPassword('same-password'), hashPassword('same-password')]);
  assert.notEqual(a, b);
  assert.notEqual(a.split('$')[4], b.split('$')[4]);
  assert.equal(await verifyPassword('same-password', a), true);
  assert.equal(await verifyPassword('same-password', b), true);
});

test('verifyPassword accepts the password and rejects anything else', async () => {
  const hash = await hashPassword('pässwörd: with colon');
  assert.equal(await verifyPassword('pässwörd: with colon', hash), true);
  assert.equal(await verifyPassword('pässwörd: with colon ', hash), false);
  assert.equal(await verifyPassword('passwörd: with colon', hash), false);
  assert.equal(await verifyPassword('', hash), false);
  assert.equal(await verifyPassword('PÄSSWÖRD: WITH COLON', hash), false);
});

test('verifyPassword honours the cost parameters stored in the hash', async () => {
  // A hash made with other (older, cheaper) parameters must keep verifying after the default cost grows.
  const salt = Buffer.from('0123456789abcdef');
  const key = scryptSync('legacy-password', salt, 32, { N: 1 << 12, r: 8, p: 1 });
  const legacy = ['scrypt', 1 << 12, 8, 1, salt.toString('base64'), key.toString('base64')].join('$');
  assert.equal(await verifyPassword('legacy-password', legacy), true);
  assert.equal(await verifyPassword('other-password', legacy), false);
});

test('verifyPassword rejects stored values that are not scrypt hashes', async () => {
  const good = await hashPassword('some-password');
  const [, n, r, p, salt, key] = good.split('$');
  for (const stored of [
    '',
    'some-password',
    `bcrypt$${n}$${r}$${p}$${salt}$${key}`,
    `scrypt$${n}$${r}$${p}$${salt}`,
    `scrypt$${n}$${r}$${p}$$${key}`,
    `scrypt$${n}$${r}$${p}$${salt}$`,
    // a truncated key must not verify as a prefix match
    `scrypt$${n}$${r}$${p}$${salt}$${Buffer.from(key, 'base64').subarray(0, 16).toString('base64')}`,
  ]) {
    assert.equal(await verifyPassword('some-password', stored), false, `accepted ${JSON.stringify(stored)}`);
  }
});

test('generatePassword gives 24 URL-safe characters, different every time', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const password = generatePassword();
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    seen.add(password);
  }
  assert.equal(seen.size, 50);
});

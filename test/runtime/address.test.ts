import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileAddress, encodeUrlValue } from '../../src/runtime/address.ts';
import { Message } from '../../src/runtime/message.ts';

const build = (address: string, properties: Record<string, string>) => {
  const message = new Message({ id: 'm-1', correlationId: 'c-1' });
  for (const [name, value] of Object.entries(properties)) message.setProperty(name, value);
  return compileAddress(address)(message);
};

test('values in the path and the query are encoded as data; percent-escapes already in them are kept', () => {
  assert.equal(build('https://h.example/users/${property.id}/sendMail', { id: 'a/b?c#d' }), 'https://h.example/users/a%2Fb%3Fc%23d/sendMail');
  assert.equal(build('https://h.example/users/${property.id}/sendMail', { id: 'noreply%40contoso.com' }), 'https://h.example/users/noreply%40contoso.com/sendMail');
  assert.equal(build('https://h.example/q?a=${property.a}&b=1', { a: 'x&b=2' }), 'https://h.example/q?a=x%26b%3D2&b=1');
  assert.equal(build('https://h.example/q?a=${property.a}', { a: '100%' }), 'https://h.example/q?a=100%25', 'a lone % is data');
  assert.equal(encodeUrlValue('ü\ud800'), '%C3%BC%EF%BF%BD', 'a lone surrogate becomes U+FFFD instead of throwing');
});

test('a value in the origin is used as it is: the flow chose to let it name the receiver', () => {
  assert.equal(build('${property.base}/orders/${property.id}', { base: 'https://api.example:8443/v2', id: '7 8' }), 'https://api.example:8443/v2/orders/7%208');
  assert.equal(build('https://${property.host}/x/${property.id}', { host: 'h.example:1', id: 'a/b' }), 'https://h.example:1/x/a%2Fb');
  assert.equal(build('${property.url}', { url: 'https://h.example/a/b?c=d&e=f' }), 'https://h.example/a/b?c=d&e=f');
});

test('a value that is a whole path segment may not be . or ..; inside a segment or in the query it may', () => {
  for (const id of ['..', '.', '%2e%2E', '%2E']) {
    assert.throws(() => build('https://h.example/a/${property.id}/b', { id }), { code: 'RECEIVER_ADDRESS_INVALID', message: /^\$\{property\.id\} in the receiver address's path is / });
    assert.throws(() => build('https://h.example/a/${property.id}', { id }), { code: 'RECEIVER_ADDRESS_INVALID' });
  }
  assert.equal(build('https://h.example/a/v${property.id}', { id: '..' }), 'https://h.example/a/v..');
  assert.equal(build('https://h.example/a?x=${property.id}', { id: '..' }), 'https://h.example/a?x=..');
});

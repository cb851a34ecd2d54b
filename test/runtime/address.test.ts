import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileAddress, encodeUrlValue } from '../../src/runtime/address.ts';
import { Message } from '../../src/runtime/message.ts';

const build = (address: string, properties: Record<string, string>) => {
  const message = new Message({ id: 'm-1', correlationId: 'c-1' });
  for (const [name, value] of Object.entries(properties)) message.setProperty(name, value);
  return compileAddress(address)(message);
};
const refused = (why: RegExp) => ({ code: 'RECEIVER_ADDRESS_INVALID', message: why });

test('values in the path, the query and the fragment are encoded as data, % included', () => {
  assert.equal(build('https://h.example/users/${property.id}/sendMail', { id: 'a/b\\c?d#e' }), 'https://h.example/users/a%2Fb%5Cc%3Fd%23e/sendMail');
  assert.equal(build('https://h.example/users/${property.id}/sendMail', { id: 'noreply%40contoso.com' }), 'https://h.example/users/noreply%2540contoso.com/sendMail', 'never decoded on the way');
  assert.equal(build('https://h.example/q?a=${property.a}&b=1', { a: 'x&b=2#f' }), 'https://h.example/q?a=x%26b%3D2%23f&b=1');
  assert.equal(build('https://h.example/x#${property.a}', { a: '../y' }), 'https://h.example/x#..%2Fy');
  assert.equal(encodeUrlValue('\u00fc\ud800'), '%C3%BC%EF%BF%BD', 'a lone surrogate becomes U+FFFD instead of throwing');
});

test('a value at the very start is used as it is; what follows it is data', () => {
  assert.equal(build('${property.url}', { url: 'https://h.example/a/b?c=d&e=f' }), 'https://h.example/a/b?c=d&e=f');
  assert.equal(build('${property.base}/orders/${property.id}', { base: 'https://api.example:8443/v2', id: '7 8/9' }), 'https://api.example:8443/v2/orders/7%208%2F9');
  // A literal :// later on is no scheme: the values after it stay data.
  assert.equal(build('${property.base}/r?u=https://${property.host}&v=${property.v}', { base: 'http://b', host: 'x', v: '1&admin=true#' }), 'http://b/r?u=https://x&v=1%26admin%3Dtrue%23');
});

test('a value in the host or port must be a name, an address or a port, and the host not empty', () => {
  assert.equal(build('https://${property.host}:${property.port}/x', { host: 'h.example', port: '8443' }), 'https://h.example:8443/x');
  assert.equal(build('http://${property.host}:8080/x', { host: 'order_service' }), 'http://order_service:8080/x');
  assert.throws(() => build('https://${property.host}/internal-admin/x', { host: '' }), refused(/^\$\{property\.host\} leaves the receiver address without a host$/));
  // However many slashes follow the scheme (http(s) takes any), what comes next is the host.
  for (const scheme of ['https:', 'https:/', 'https:///', 'https:\\\\']) {
    assert.throws(() => build(`${scheme}\${property.host}/x`, { host: 'a@b' }), refused(/host/), scheme);
  }
  // A leading value that is the scheme: the host after it is checked too.
  assert.equal(build('${property.scheme}://${property.host}/x/${property.id}', { scheme: 'https', host: 'h.example', id: 'a/b' }), 'https://h.example/x/a%2Fb');
  assert.throws(() => build('${property.scheme}://${property.host}/x', { scheme: 'https', host: 'evil.example@h' }), refused(/host/));
  assert.equal(build('http://[${property.ip}]/x', { ip: '::1' }), 'http://[::1]/x');
  for (const host of ['evil.example@h', 'h/../admin', 'h?x=1', 'h\\x', 'h#x', 'h x']) {
    assert.throws(() => build('https://${property.host}/x', { host }), refused(/^\$\{property\.host\} in the receiver address's host holds what a host name, address or port cannot$/));
  }
  assert.throws(() => build('https://h.example${property.path}', { path: '/../admin?x=1' }), refused(/host/));
});

test('a path segment a value makes . or .. is refused, also with literal dots, encoded dots or backslashes', () => {
  for (const id of ['..', '.']) {
    assert.throws(() => build('https://h.example/a/${property.id}/b', { id }), refused(/^\$\{property\.id\} makes a segment of the receiver address's path "\.{1,2}"/));
    assert.throws(() => build('https://h.example/a/${property.id}', { id }), refused(/path/));
    assert.throws(() => build('https://h.example\\a\\${property.id}\\b', { id }), refused(/path/));
  }
  assert.throws(() => build('https://h.example/files/${property.name}.${property.ext}/content', { name: '.', ext: '' }), refused(/"\.\."/));
  assert.throws(() => build('https://h.example/files/${property.name}.${property.ext}/content', { name: '', ext: '.' }), refused(/"\.\."/));
  assert.throws(() => build('https://h.example/%2e${property.id}/x', { id: '.' }), refused(/"%2e\."/));
  // Not a whole dot segment: data like any other.
  assert.equal(build('https://h.example/a/v${property.id}', { id: '..' }), 'https://h.example/a/v..');
  assert.equal(build('https://h.example/a/${property.id}', { id: '%2e%2e' }), 'https://h.example/a/%252e%252e');
  assert.equal(build('https://h.example/a?x=${property.id}', { id: '..' }), 'https://h.example/a?x=..');
});

test('what the URL parser drops (tabs, line breaks) or trims (spaces at the ends) cannot hide a dot segment', () => {
  assert.throws(() => build('https://h.example/api/v1/${property.id} ', { id: '..' }), refused(/"\.\."/));
  assert.throws(() => build('https://h.example/api/v1/${property.id}\n', { id: '..' }), refused(/"\.\."/));
  assert.throws(() => build('https://h.example/api/${property.a}\t${property.b}/x', { a: '.', b: '.' }), refused(/"\.\."/));
  assert.equal(build('  https://h.example/a/${property.id}\n', { id: 'x' }), 'https://h.example/a/x');
});

test('a value right after a leading value, before any / ? #, is a deploy error: it could extend the host', () => {
  assert.throws(() => compileAddress('${property.base}${header.x}'), /^Error: \$\{header\.x\} follows \$\{property\.base\} before any "\/", "\?" or "#", so it could change the receiver's host/);
  assert.throws(() => compileAddress('${property.base}.example.com${property.x}/y'), /follows/);
  assert.doesNotThrow(() => compileAddress('${property.base}.example.com/${property.x}'));
});

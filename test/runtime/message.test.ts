import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Message, markBodyFromCaller } from '../../src/runtime/message.ts';
import { MessageFailure } from '../../src/runtime/errors.ts';
import { compileExpression, formatDate } from '../../src/runtime/expressions.ts';

test('Message: headers match case-insensitively and keep their case; bodies convert once and remember their kind', () => {
  const message = new Message({ id: 'm1', correlationId: 'c1', headers: { 'X-Order': '42' } });
  assert.equal(message.getHeader('x-order'), '42');
  assert.deepEqual(message.getHeaders(), { 'X-Order': '42' });
  message.removeHeader('X-ORDER');
  assert.equal(message.getHeader('X-Order'), undefined);

  message.setBody({ a: 1 });
  assert.equal(message.isJsonBody(), true);
  assert.equal(message.getBody().toString(), '{"a":1}');
  assert.equal(message.isJsonBody(), true, 'a cached conversion does not change the kind');

  message.setBody('{"b":2}');
  assert.equal(message.isJsonBody(), false);
  const parsed = message.getBodyAsJson<{ b: number }>();
  assert.equal(parsed.b, 2);
  assert.equal(message.getBodyAsJson(), parsed, 'parsed once');

  message.setJsonBody({ c: 3 }, Buffer.from('{ "c": 3 }'));
  assert.equal(message.isJsonBody(), false, 'received bytes stay the body');
  assert.equal(message.getBodyAsString(), '{ "c": 3 }');
  assert.deepEqual(message.getBodyAsJson(), { c: 3 });
});

test('Message.assign takes over everything but the id and correlation id', () => {
  const message = new Message({ id: 'mine', correlationId: 'corr' });
  const other = new Message({ id: 'other', correlationId: 'x', body: { z: 1 }, headers: { A: 'b' } });
  other.status = 201;
  other.setProperty('p', 1);
  message.assign(other);
  assert.equal(message.id, 'mine');
  assert.equal(message.correlationId, 'corr');
  assert.equal(message.status, 201);
  assert.equal(message.getHeader('a'), 'b');
  assert.equal(message.getProperty('p'), 1);
  assert.equal(message.isJsonBody(), true);
  assert.equal(message.getBodyAsString(), '{"z":1}');
});

test("Message: reading the caller's body as JSON when it is not is a 400 INVALID_JSON; a body a step set stays a SyntaxError", () => {
  const message = new Message({ id: 'm', correlationId: 'c', body: Buffer.from('name=Ada') });
  markBodyFromCaller(message);
  assert.throws(
    () => message.getBodyAsJson(),
    (err: unknown) => err instanceof MessageFailure && err.code === 'INVALID_JSON' && err.statusCode === 400 && /the body sent is not JSON \(malformed/.test(err.message) && !err.message.includes('Ada'),
  );
  const copy = new Message({ id: 'n', correlationId: 'c' });
  copy.assign(message);
  assert.throws(() => copy.getBodyAsJson(), MessageFailure, 'assign takes the mark over with the body');

  message.setBody('not json either');
  assert.throws(() => message.getBodyAsJson(), SyntaxError, 'a body a step set is the flow\'s: no longer the caller\'s error');
  const caller = new Message({ id: 'o', correlationId: 'c', body: Buffer.from('{"a":1}') });
  markBodyFromCaller(caller);
  assert.deepEqual(caller.getBodyAsJson(), { a: 1 });
});

test('expressions: headers, properties, body, ids and dates; unknown, unclosed or nested placeholders and unknown date letters are deploy errors', () => {
  const message = new Message({ id: 'm1', correlationId: 'c1', body: 'text', headers: { 'X-A': 'a' } });
  message.setProperty('n', 5);
  message.setProperty('o', { k: 'v' });
  assert.equal(compileExpression('${header.X-A}/${property.n}/${property.o}/${body}/${messageId}/${correlationId}/${header.none}')(message), 'a/5/{"k":"v"}/text/m1/c1/');
  assert.equal(compileExpression('plain')(message), 'plain');
  assert.match(compileExpression('${date:now:yyyy-MM-dd}')(message), /^\d{4}-\d{2}-\d{2}$/);
  assert.throws(() => compileExpression('${nope}'), /unknown expression \$\{nope\}/);
  assert.throws(() => compileExpression('Bearer secret-key-123 ${header.X-Foo'), (err: Error) => /^\$\{ without its closing \}: "\$\{header\.X-Foo"$/.test(err.message), 'quoted from the ${ on, so no parameter value before it');
  assert.throws(() => compileExpression('${property.${header.X}}'), /cannot be nested/);
  assert.throws(() => compileExpression('${date:now:yyyy-QQ-dd}'), /"Q" is not a date pattern letter/);
  assert.match(compileExpression("${date:now:yyyy-MM-dd'T'HH:mm:ss'Z'}")(message), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  assert.equal(formatDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), "yyyy-MM-dd'T'HH:mm:ss.SSS"), '2026-01-02T03:04:05.006');
  assert.equal(formatDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"), '2026-01-02T03:04:05.006Z', 'CPI\'s ISO pattern: the zone of UTC');
  assert.equal(formatDate(new Date(0), 'yyyyMMddHHmmssZ'), '19700101000000+0000');
});

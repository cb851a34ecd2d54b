import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { violationsOf } from '../../src/runtime/violations.ts';

const mailSchema = JSON.parse(readFileSync(new URL('../../flows/send-mail/schemas/mail-request.json', import.meta.url), 'utf8')) as object;

/** As a flow's body is checked (src/flows/registry.ts): verbose errors, and the root schema for their $refs. */
function check(schema: object, body: unknown) {
  const validate = new Ajv({ allErrors: true, strict: false, verbose: true }).compile(schema);
  assert.equal(validate(body), false);
  return violationsOf(validate.errors, validate.schema);
}

test('the alternatives of a union become one violation; unconditional demands at the same place stay apart', () => {
  const schema = { type: 'object', required: ['to'], anyOf: [{ required: ['text'] }, { required: ['html'] }], properties: { to: { type: 'string' } } };
  assert.deepEqual(check(schema, { to: 5 }), [
    { pointer: '/', message: "must have required property 'text', or must have required property 'html'" },
    { pointer: '/to', message: 'must be string' },
  ]);
  assert.deepEqual(check(schema, {}), [
    { pointer: '/', message: "must have required property 'text', or must have required property 'html'" },
    { pointer: '/', message: "must have required property 'to'" },
  ]);
});

test('summaries ("must match a schema in anyOf", "must match "else" schema") are left out; unknown properties keep their name', () => {
  const details = check(mailSchema, { to: 'a@b.c', subject: 's', colour: 'red' });
  assert.ok(!details.some((d) => /must match (a schema in anyOf|"else" schema)/.test(d.message)), JSON.stringify(details));
  assert.deepEqual(details.find((d) => d.property === 'colour'), { pointer: '/', message: 'must NOT have additional properties', property: 'colour' });
  assert.ok(details.some((d) => d.message === "must have required property 'text', or must have required property 'html'"));
});

test('unions through $ref and unions inside unions merge into one violation; repeated messages are listed once; allowed values are named', () => {
  // recipients = recipient | recipient[], recipient = address | { address }: ajv restarts schema paths at each $ref,
  // so only the schemas themselves (verbose errors) tell which branch an error is from.
  const lines = (body: object) => check(mailSchema, { subject: 's', text: 'x', ...body }).map((d) => `${d.pointer} ${d.message}`);
  assert.deepEqual(lines({ to: 5 }), ['/to must be string, or must be object, or must be array']);
  assert.deepEqual(lines({ to: 'nobody' }), ['/to must match pattern "^[^@\\s<>]+@[^@\\s<>]+$", or must be object, or must be array']);
  assert.deepEqual(lines({ to: { name: 'Ada' } }), ["/to must be string, or must have required property 'address', or must be array"]);
  // A branch that fits (an array; an object with an address) leaves the problem inside it, not "must be string".
  assert.deepEqual(lines({ to: ['a@b.c', 7] }), ['/to/1 must be string, or must be object']);
  assert.deepEqual(check(mailSchema, { subject: 's', text: 'x', to: { address: 'a@b.c', nmae: 'Ada' } }), [
    { pointer: '/to', message: 'must NOT have additional properties', property: 'nmae' },
  ]);
  assert.deepEqual(check({ anyOf: [{ const: 1 }, { const: 1 }, { const: 'two' }] }, 3), [{ pointer: '/', message: 'must be 1, or must be "two"' }]);
  assert.deepEqual(check({ properties: { importance: { enum: ['low', 'high'] } } }, { importance: 'urgent' }), [{ pointer: '/importance', message: 'must be one of "low", "high"' }]);
});

test('errors of one branch are joined by "and", branches by "or"; a summary nothing explains is kept', () => {
  assert.deepEqual(check({ anyOf: [{ required: ['a', 'b'] }, { required: ['c'] }] }, {}), [
    { pointer: '/', message: "must have required property 'a' and must have required property 'b', or must have required property 'c'" },
  ]);
  // x matches both branches of its oneOf (no error below it), y is of the wrong type: both are reported.
  const details = check({ properties: { x: { oneOf: [{ type: 'number' }, { type: 'integer' }] }, y: { type: 'string' } } }, { x: 1, y: 2 });
  assert.deepEqual(details.map((d) => `${d.pointer} ${d.message}`), ['/x must match exactly one schema in oneOf', '/y must be string']);
});

test('without verbose errors, unions still merge where schema paths tell', () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile({ anyOf: [{ required: ['a', 'b'] }, { required: ['c'] }] });
  assert.equal(validate({}), false);
  assert.deepEqual(violationsOf(validate.errors), [{ pointer: '/', message: "must have required property 'a' and must have required property 'b', or must have required property 'c'" }]);
});

test("a union's demands are kept when a branch only fails inside: a tagged union, an unknown property, a schema used beside and inside a union", () => {
  const lines = (schema: object, body: unknown) => check(schema, body).map((d) => `${d.pointer} ${d.message}${d.property ? ` (${d.property})` : ''}`);
  const tagged = {
    oneOf: [
      { properties: { kind: { const: 'mail' }, to: {} }, required: ['kind'] },
      { properties: { kind: { const: 'sms' }, phone: {} }, required: ['kind', 'phone'] },
    ],
  };
  // The sms branch is meant: its missing phone must not be dropped because the mail branch failed only on kind.
  assert.deepEqual(lines(tagged, { kind: 'sms' }), ['/kind must be "mail"', "/ must have required property 'phone'"]);
  const closed = {
    oneOf: [
      { properties: { kind: { const: 'a' } }, required: ['kind'] },
      { properties: { kind: { const: 'b' }, y: {} }, required: ['kind', 'y'], additionalProperties: false },
    ],
  };
  assert.deepEqual(lines(closed, { kind: 'b', x: 1 }).sort(), ['/ must NOT have additional properties (x)', "/ must have required property 'y'", '/kind must be "a"'].sort());
  // named is required beside the oneOf and inside person: name stays a demand of its own.
  const shared = {
    definitions: { named: { required: ['name'] }, person: { allOf: [{ $ref: '#/definitions/named' }, { required: ['born'] }] }, company: { required: ['regNo'] } },
    allOf: [{ $ref: '#/definitions/named' }, { oneOf: [{ $ref: '#/definitions/person' }, { $ref: '#/definitions/company' }] }],
  };
  const sharedLines = lines(shared, {});
  assert.ok(sharedLines.includes("/ must have required property 'name'"), JSON.stringify(sharedLines));
  assert.ok(sharedLines.some((line) => line.endsWith(", or must have required property 'regNo'")), JSON.stringify(sharedLines));
});

test('a body that breaks the schema thousands of times gets the first 99 violations and a last entry saying there are more', () => {
  const details = check({ type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'number' }] } }, Array.from({ length: 5000 }, () => ({})));
  assert.equal(details.length, 100);
  assert.deepEqual(details[0], { pointer: '/0', message: 'must be string, or must be number' });
  assert.deepEqual(details[99], { pointer: '/', message: 'and more: the body breaks the schema in 15000 ways in all; the first are listed' });
});

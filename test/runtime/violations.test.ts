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

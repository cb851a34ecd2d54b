import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from '../../src/errors.ts';
import { DEFAULT_TOP, MAX_TOP, normalizeDateTime, parseFilter, parseMessageLogListQuery, parseOrderBy } from '../../src/monitor/odata.ts';
import type { FilterExpression } from '../../src/store/types.ts';

/** Renders a parsed filter fully parenthesized, so precedence is visible in assertions. */
function show(expression: FilterExpression | undefined): string {
  if (!expression) return '<none>';
  if (expression.kind === 'logical') return `(${show(expression.left)} ${expression.operator} ${show(expression.right)})`;
  return `${expression.field} ${expression.operator} ${JSON.stringify(expression.value)}`;
}

function rejects(filter: string, message: string | RegExp) {
  assert.throws(
    () => parseFilter(filter),
    (err: unknown) => {
      assert.ok(err instanceof HttpError, `expected an HttpError for ${filter}`);
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'INVALID_QUERY');
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
    `expected ${filter} to be rejected`,
  );
}

test('comparisons on every operator and literal kind', () => {
  assert.equal(show(parseFilter("Status eq 'COMPLETED'")), 'Status eq "COMPLETED"');
  for (const op of ['eq', 'ne', 'gt', 'lt', 'ge', 'le']) {
    assert.equal(show(parseFilter(`DurationMs ${op} 250`)), `DurationMs ${op} 250`);
  }
  assert.equal(show(parseFilter('DurationMs gt 1.5')), 'DurationMs gt 1.5');
  assert.equal(show(parseFilter('DurationMs gt -3')), 'DurationMs gt -3');
  assert.equal(show(parseFilter('DurationMs lt 10L')), 'DurationMs lt 10');
  assert.equal(show(parseFilter('DurationMs lt 2.5M')), 'DurationMs lt 2.5');
  assert.equal(show(parseFilter('CustomStatus eq null')), 'CustomStatus eq null');
  assert.equal(show(parseFilter('LogEnd ne null')), 'LogEnd ne null');
  assert.equal(show(parseFilter("  IntegrationFlowName   eq\t'send-mail'  ")), 'IntegrationFlowName eq "send-mail"');
});

test('string literals: doubled quotes escape a quote; other characters are kept as they are', () => {
  assert.equal(show(parseFilter("Sender eq 'O''Brien'")), 'Sender eq "O\'Brien"');
  assert.equal(show(parseFilter("Sender eq ''''")), 'Sender eq "\'"');
  assert.equal(show(parseFilter("Sender eq ''")), 'Sender eq ""');
  assert.equal(show(parseFilter("Sender eq 'a and b or (c)'")), 'Sender eq "a and b or (c)"');
  assert.equal(show(parseFilter("Sender eq 'Zoë €'")), 'Sender eq "Zoë €"');
});

test('and binds tighter than or; both associate to the left; parentheses override', () => {
  assert.equal(
    show(parseFilter("Status eq 'FAILED' or Status eq 'RETRY' and IntegrationFlowName eq 'a'")),
    '(Status eq "FAILED" or (Status eq "RETRY" and IntegrationFlowName eq "a"))',
  );
  assert.equal(
    show(parseFilter("Status eq 'RETRY' and IntegrationFlowName eq 'a' or Status eq 'FAILED'")),
    '((Status eq "RETRY" and IntegrationFlowName eq "a") or Status eq "FAILED")',
  );
  assert.equal(
    show(parseFilter("(Status eq 'FAILED' or Status eq 'RETRY') and IntegrationFlowName eq 'a'")),
    '((Status eq "FAILED" or Status eq "RETRY") and IntegrationFlowName eq "a")',
  );
  assert.equal(show(parseFilter('DurationMs eq 1 or DurationMs eq 2 or DurationMs eq 3')), '((DurationMs eq 1 or DurationMs eq 2) or DurationMs eq 3)');
  assert.equal(show(parseFilter('((((DurationMs eq 1))))')), 'DurationMs eq 1');
  assert.equal(show(parseFilter('(DurationMs eq 1)and(DurationMs eq 2)')), '(DurationMs eq 1 and DurationMs eq 2)');
});

test('datetime literals are normalized to the stored ISO form (UTC when no offset is given)', () => {
  const cases: [string, string][] = [
    ["datetime'2026-11-26T10:00:00'", '2026-11-26T10:00:00.000Z'],
    ["datetime'2026-11-26T10:00'", '2026-11-26T10:00:00.000Z'],
    ["datetime'2026-11-26T10:00:00Z'", '2026-11-26T10:00:00.000Z'],
    ["datetime'2026-11-26T10:00:00.123'", '2026-11-26T10:00:00.123Z'],
    ["datetime'2026-11-26T10:00:00.5Z'", '2026-11-26T10:00:00.500Z'],
    ["datetime'2026-11-26T10:00:00.1234567'", '2026-11-26T10:00:00.123Z'],
    ["datetimeoffset'2026-11-26T10:00:00Z'", '2026-11-26T10:00:00.000Z'],
    ["datetimeoffset'2026-11-26T11:30:00+01:30'", '2026-11-26T10:00:00.000Z'],
    ["datetimeoffset'2026-11-26T05:00:00.250-05:00'", '2026-11-26T10:00:00.250Z'],
    ["datetime'2024-02-29T00:00:00'", '2024-02-29T00:00:00.000Z'],
  ];
  for (const [literal, iso] of cases) {
    assert.equal(show(parseFilter(`LogStart ge ${literal}`)), `LogStart ge "${iso}"`, literal);
  }
  assert.equal(
    show(parseFilter("LogStart ge datetime'2026-11-26T10:00:00' and LogStart lt datetime'2026-11-27T10:00:00'")),
    '(LogStart ge "2026-11-26T10:00:00.000Z" and LogStart lt "2026-11-27T10:00:00.000Z")',
  );
  assert.equal(normalizeDateTime('2026-02-30T00:00:00'), undefined);
  assert.equal(normalizeDateTime('2026-13-01T00:00:00'), undefined);
  assert.equal(normalizeDateTime('2026-01-01T24:00:00'), undefined);
  assert.equal(normalizeDateTime('2026-01-01'), undefined);
  assert.equal(normalizeDateTime('2026-01-01T00:00:00+25:00'), undefined);
  assert.equal(normalizeDateTime('0000-01-01T00:00:00+01:00'), undefined, 'would leave the four-digit years');
});

test('an empty or blank $filter means no filter', () => {
  assert.equal(parseFilter(''), undefined);
  assert.equal(parseFilter('   '), undefined);
});

test('malformed filters are 400 INVALID_QUERY naming the problem and its position', () => {
  rejects("Foo eq 'x'", '$filter: unknown field "Foo" at position 0');
  rejects("Status eq 'x' and status eq 'y'", '$filter: unknown field "status" at position 18');
  rejects("Status EQ 'x'", '$filter: unknown operator "EQ" (expected eq, ne, gt, lt, ge or le) at position 7');
  rejects("Status == 'x'", '$filter: unexpected character "=" at position 7');
  rejects("Status like 'x'", /unknown operator "like"/);
  rejects("(Status eq 'x'", '$filter: unbalanced parentheses: "(" at position 0 is never closed at position 14');
  rejects("Status eq 'x')", '$filter: unbalanced parentheses: unexpected ")" at position 13');
  rejects("((Status eq 'x')", /never closed/);
  rejects("Status eq 'x", '$filter: unterminated string literal at position 10');
  rejects("Status eq 'x' foo", '$filter: unexpected "foo" (expected "and", "or" or the end) at position 14');
  rejects("Status eq 'x' and", '$filter: expected a field name but found end of input at position 17');
  rejects("Status eq 'x' or or Status eq 'y'", /expected a field name but found "or" at position 17/);
  rejects("and Status eq 'x'", /expected a field name but found "and" at position 0/);
  rejects('Status eq', '$filter: expected a value after the operator but found end of input at position 9');
  rejects('Status eq COMPLETED', /expected a literal value but found "COMPLETED" \(strings are quoted/);
  rejects('Status eq Sender', /comparing two fields is not supported/);
  rejects("substringof('mail', IntegrationFlowName)", '$filter: function substringof() is not supported (only eq, ne, gt, lt, ge, le joined by and / or) at position 0');
  rejects("startswith(IntegrationFlowName, 'send') eq true", /function startswith\(\) is not supported .* at position 0/);
  rejects("Sender eq tolower('x')", /function tolower\(\) is not supported at position 10/);
  rejects("not Status eq 'x'", /operator "not" is not supported at position 0/);
  rejects("Status eq 'x' and ()", /expected a field name but found "\)" at position 19/);
  rejects('()', /expected a field name but found "\)" at position 1/);
  rejects("'COMPLETED' eq Status", /expected a field name but found string 'COMPLETED' at position 0/);
  rejects('Steps eq null', /unknown field "Steps"/);
  rejects("Error/code eq 'x'", /unknown field "Error\/code"/);
  rejects("Status eq 'x';", /unexpected character ";" at position 13/);
  rejects("Status eq 'x' && Sender eq 'y'", /unexpected character "&"/);
  rejects('DurationMs add 5 gt 10', /unknown operator "add"/);
});

test('literals must fit their field', () => {
  rejects("LogStart gt '2026-11-26T10:00:00Z'", /LogStart compares with a datetime'yyyy-mm-ddThh:mm:ss' literal, not string '2026-11-26T10:00:00Z' at position 12/);
  rejects('LogEnd gt 1700000000000', /LogEnd compares with a datetime/);
  rejects("DurationMs gt '5'", /DurationMs compares with a number, not string '5' at position 14/);
  rejects('IntegrationFlowName eq 5', /IntegrationFlowName compares with a quoted string, not 5 at position 23/);
  rejects("Status eq datetime'2026-11-26T10:00:00'", /Status compares with a quoted string/);
  rejects("LogStart gt datetime'2026-11-26'", /invalid datetime literal datetime'2026-11-26' .* at position 12/);
  rejects("LogStart gt datetime'2026-02-30T10:00:00'", /invalid datetime literal/);
  rejects("LogStart gt datetime'yesterday'", /invalid datetime literal/);
  rejects("LogStart gt datetime'2026-11-26T10:00:00", /unterminated string literal at position 12/);
  rejects("LogStart gt datetimeoffset'2026-11-26T10:00:00+1:00'", /invalid datetimeoffset literal/);
  rejects("MessageGuid eq guid'0b7d2650-0000-0000-0000-000000000000'", /unsupported literal guid'/);
  rejects('DurationMs gt 5x', /malformed number "5x" at position 14/);
  rejects('DurationMs gt 1.2.3', /malformed number|unexpected/);
});

test('hostile filters are bounded: nesting depth and number of comparisons', () => {
  rejects(`${'('.repeat(40)}DurationMs eq 1${')'.repeat(40)}`, /nested deeper than 32/);
  rejects(Array.from({ length: 101 }, (_, i) => `DurationMs eq ${i}`).join(' or '), /more than 100 comparisons/);
  assert.ok(parseFilter(Array.from({ length: 100 }, (_, i) => `DurationMs eq ${i}`).join(' or ')));
});

test('$orderby: fields with optional asc / desc, comma-separated', () => {
  assert.deepEqual(parseOrderBy('LogStart desc, IntegrationFlowName'), [
    { field: 'LogStart', direction: 'desc' },
    { field: 'IntegrationFlowName', direction: 'asc' },
  ]);
  assert.deepEqual(parseOrderBy('DurationMs asc'), [{ field: 'DurationMs', direction: 'asc' }]);
  assert.throws(() => parseOrderBy('Foo'), /\$orderby: unknown field "Foo" at position 0/);
  assert.throws(() => parseOrderBy('LogStart down'), /expected asc or desc but found "down" at position 9/);
  assert.throws(() => parseOrderBy('LogStart,'), /expected a field name but found end of input at position 9/);
  assert.throws(() => parseOrderBy('LogStart desc Status'), /expected "," or the end/);
});

test('the list query: defaults, $top capped at the page size, $skip, $inlinecount, $format, unknown options', () => {
  const defaults = parseMessageLogListQuery({});
  assert.deepEqual(defaults.query, { orderBy: [{ field: 'LogStart', direction: 'desc' }], top: DEFAULT_TOP, skip: 0, count: false });
  assert.equal(defaults.requestedTop, undefined);

  const full = parseMessageLogListQuery({
    $filter: "Status eq 'FAILED'",
    $orderby: 'IntegrationFlowName',
    $top: '20',
    $skip: '40',
    $inlinecount: 'allpages',
    $format: 'json',
    sap_client: '100',
  });
  assert.equal(full.query.top, 20);
  assert.equal(full.query.skip, 40);
  assert.equal(full.query.count, true);
  assert.equal(show(full.query.filter), 'Status eq "FAILED"');
  assert.deepEqual(full.query.orderBy, [{ field: 'IntegrationFlowName', direction: 'asc' }]);

  const big = parseMessageLogListQuery({ $top: '5000' });
  assert.equal(big.query.top, MAX_TOP);
  assert.equal(big.requestedTop, 5000);
  assert.equal(parseMessageLogListQuery({ $top: '0' }).query.top, 0);
  assert.equal(parseMessageLogListQuery({ $inlinecount: 'none' }).query.count, false);
  assert.deepEqual(parseMessageLogListQuery({ $select: 'MessageGuid,Status' }).select, ['MessageGuid', 'Status']);

  for (const [raw, message] of [
    [{ $top: '-1' }, /\$top: expected a non-negative integer, got "-1"/],
    [{ $top: 'ten' }, /\$top: expected a non-negative integer/],
    [{ $top: '1e3' }, /\$top: expected a non-negative integer/],
    [{ $top: '' }, /\$top: expected a non-negative integer/],
    [{ $skip: '1.5' }, /\$skip: expected a non-negative integer/],
    [{ $inlinecount: 'yes' }, /\$inlinecount: expected allpages or none/],
    [{ $format: 'xml' }, /\$format: only json is supported/],
    [{ $expand: 'CustomHeaderProperties' }, /\$expand: not supported/],
    [{ $search: 'x' }, /\$search: unknown system query option/],
    [{ $filter: ["Status eq 'A'", "Status eq 'B'"] }, /\$filter: given more than once/],
    [{ $select: 'Nope' }, /\$select: unknown property "Nope" at position 0/],
  ] as [Record<string, unknown>, RegExp][]) {
    assert.throws(() => parseMessageLogListQuery(raw), (err: unknown) => err instanceof HttpError && err.statusCode === 400 && message.test(err.message), JSON.stringify(raw));
  }
});

/**
 * OData V2 system query options for the message processing log list, parsed into a MessageLogQuery.
 *
 * $filter grammar (a small tokenizer and a recursive-descent parser; `and` binds tighter than `or`):
 *
 *   filter     := or
 *   or         := and ( "or" and )*
 *   and        := primary ( "and" primary )*
 *   primary    := "(" or ")" | comparison
 *   comparison := Field ( "eq" | "ne" | "gt" | "lt" | "ge" | "le" ) literal
 *   literal    := 'string' ('' escapes a quote) | number | null | datetime'…' | datetimeoffset'…'
 *
 * Fields are MESSAGE_LOG_FIELDS (case-sensitive, as in CPI). A literal must fit its field: strings for text fields,
 * numbers for DurationMs, datetime literals for LogStart / LogEnd (normalized to `Date#toISOString()`, the form they
 * are stored in; a datetime without an offset is UTC, as in CPI). `null` fits every field.
 * Anything else (functions such as substringof, `not`, arithmetic, unknown fields) is a 400 INVALID_QUERY whose
 * message names the problem and its 0-based position in the option's text.
 */
import { HttpError } from '../errors.ts';
import { MESSAGE_LOG_FIELDS, type ComparisonOperator, type FilterExpression, type MessageLogField, type MessageLogQuery } from '../store/types.ts';

/** Page size: the list answers at most this many records per request (more through `__next`). */
export const MAX_TOP = 1000;
/** Records per page when the client sends no $top. */
export const DEFAULT_TOP = 1000;
/** Order when the client sends no $orderby: newest first. */
export const DEFAULT_ORDER_BY: MessageLogQuery['orderBy'] = [{ field: 'LogStart', direction: 'desc' }];
/** Bounds that keep a hostile $filter from exhausting the stack or the database's expression depth. */
const MAX_NESTING = 32;
const MAX_COMPARISONS = 100;

const OPERATORS: readonly ComparisonOperator[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le'];
const DATE_FIELDS: ReadonlySet<MessageLogField> = new Set(['LogStart', 'LogEnd']);
const NUMBER_FIELDS: ReadonlySet<MessageLogField> = new Set(['DurationMs']);
const FIELDS: ReadonlySet<string> = new Set(MESSAGE_LOG_FIELDS);
/** Fields of CPI's MessageProcessingLog that iflow does not keep: named as such, not as a typo. */
const CPI_FIELDS_NOT_KEPT: ReadonlySet<string> = new Set([
  'LogLevel',
  'ApplicationMessageType',
  'AlternateWebLink',
  'IntegrationArtifact',
  'TransactionId',
  'OriginComponentName',
  'PreviousComponentName',
  'LocalComponentName',
  'ArchivingStatus',
  'ArchivingSenderChannelMessages',
  'ArchivingReceiverChannelMessages',
  'ArchivingLogAttachments',
  'ArchivingPersistedMessages',
  // Navigation properties ($select may name them).
  'CustomHeaderProperties',
  'Attachments',
  'AdapterAttributes',
  'Runs',
  'ErrorInformation',
]);

/** Why `name` cannot be queried: one of CPI's fields iflow does not keep, or not a field at all. */
function unknownName(kind: 'field' | 'property', name: string): string {
  return CPI_FIELDS_NOT_KEPT.has(name) ? `${kind} "${name}" is one of CPI's that iflow does not keep` : `unknown ${kind} "${name}"`;
}

/** Properties of a list entry that `$select` may name (the filterable fields plus iflow's additions). */
export const SELECTABLE_PROPERTIES: readonly string[] = [...MESSAGE_LOG_FIELDS, 'Steps', 'Error'];

function invalidQuery(option: string, message: string, position?: number): HttpError {
  const where = position === undefined ? '' : ` at position ${position}`;
  return new HttpError(400, 'INVALID_QUERY', `${option}: ${message}${where}`, position === undefined ? { option } : { option, position });
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer

type Token =
  | { type: 'word'; text: string; pos: number }
  | { type: 'string'; value: string; pos: number }
  | { type: 'number'; value: number; text: string; pos: number }
  | { type: 'datetime'; value: string; text: string; pos: number }
  | { type: 'punct'; text: '(' | ')' | ','; pos: number }
  | { type: 'end'; pos: number };

const isDigit = (c: string) => c >= '0' && c <= '9';
const isWordStart = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isWordPart = (c: string) => isWordStart(c) || isDigit(c) || c === '.' || c === '/';
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

function describe(token: Token): string {
  switch (token.type) {
    case 'end':
      return 'end of input';
    case 'word':
      return `"${token.text}"`;
    case 'string':
      return `string '${token.value.replaceAll("'", "''")}'`;
    case 'number':
    case 'datetime':
      return token.text;
    case 'punct':
      return `"${token.text}"`;
  }
}

/** Reads a quoted literal starting at `start` (the opening quote); returns its value and the index after it. */
function readQuoted(option: string, text: string, start: number, literalStart: number): { value: string; next: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw invalidQuery(option, 'unterminated string literal', literalStart);
    const c = text[i];
    if (c === "'") {
      if (text[i + 1] === "'") {
        value += "'";
        i += 2;
        continue;
      }
      return { value, next: i + 1 };
    }
    value += c;
    i += 1;
  }
}

/** `yyyy-mm-ddThh:mm[:ss[.fffffff]][Z|±hh:mm]` → `Date#toISOString()`, or undefined when it is no valid instant. */
export function normalizeDateTime(text: string): string | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?$/.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s = '00', fraction = '', offset] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number);
  const millis = Number(fraction.padEnd(3, '0').slice(0, 3));
  const local = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  const check = new Date(local);
  // Date.UTC rolls 31 February over into March: a literal must name a real calendar instant.
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  let shiftMinutes = 0;
  if (offset !== undefined && offset !== 'Z') {
    const offHours = Number(offset.slice(1, 3));
    const offMinutes = Number(offset.slice(4, 6));
    if (offHours > 23 || offMinutes > 59) return undefined;
    shiftMinutes = (offset[0] === '-' ? -1 : 1) * (offHours * 60 + offMinutes);
  }
  const instant = local - shiftMinutes * 60_000;
  // Outside the years 0000–9999 toISOString widens the year ("+010000-…"), which would not compare as stored text.
  const iso = new Date(instant).toISOString();
  return iso.length === 24 ? iso : undefined;
}

function tokenize(option: string, text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (isSpace(c)) {
      i += 1;
      continue;
    }
    const pos = i;
    if (c === '(' || c === ')' || c === ',') {
      tokens.push({ type: 'punct', text: c, pos });
      i += 1;
    } else if (c === "'") {
      const { value, next } = readQuoted(option, text, i, pos);
      tokens.push({ type: 'string', value, pos });
      i = next;
    } else if (isDigit(c) || ((c === '-' || c === '+') && isDigit(text[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < text.length && isDigit(text[j])) j += 1;
      if (text[j] === '.' && isDigit(text[j + 1] ?? '')) {
        j += 2;
        while (j < text.length && isDigit(text[j])) j += 1;
      }
      const digits = text.slice(i, j);
      // OData V2 type suffixes: 10L (Int64), 1.5M (Decimal), 1.5d (Double), 1.5f (Single).
      if ('LlMmDdFf'.includes(text[j] ?? '#')) j += 1;
      if (j < text.length && (isWordPart(text[j]) || text[j] === "'")) throw invalidQuery(option, `malformed number "${text.slice(i, j + 1)}"`, pos);
      tokens.push({ type: 'number', value: Number(digits), text: text.slice(i, j), pos });
      i = j;
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < text.length && isWordPart(text[j])) j += 1;
      const word = text.slice(i, j);
      if (text[j] === "'") {
        // A typed literal: datetime'…', datetimeoffset'…' (and, rejected below, guid'…', X'…', time'…').
        const { value, next } = readQuoted(option, text, j, pos);
        const raw = text.slice(i, next);
        if (word === 'datetime' || word === 'datetimeoffset') {
          const iso = normalizeDateTime(value);
          if (iso === undefined) {
            throw invalidQuery(option, `invalid ${word} literal ${raw} (expected ${word}'yyyy-mm-ddThh:mm[:ss[.fffffff]]', optionally ending in Z or ±hh:mm)`, pos);
          }
          tokens.push({ type: 'datetime', value: iso, text: raw, pos });
        } else {
          throw invalidQuery(option, `unsupported literal ${raw}`, pos);
        }
        i = next;
      } else {
        tokens.push({ type: 'word', text: word, pos });
        i = j;
      }
    } else {
      throw invalidQuery(option, `unexpected character "${c}"`, pos);
    }
  }
  tokens.push({ type: 'end', pos: text.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------------------------------
// $filter

class FilterParser {
  private index = 0;
  private comparisons = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly option: string,
  ) {}

  private get current(): Token {
    return this.tokens[this.index];
  }

  private fail(message: string, token: Token = this.current): never {
    throw invalidQuery(this.option, message, token.pos);
  }

  private isWord(text: string): boolean {
    const token = this.current;
    return token.type === 'word' && token.text === text;
  }

  parse(): FilterExpression {
    const expression = this.or(0);
    const rest = this.current;
    if (rest.type !== 'end') {
      if (rest.type === 'punct' && rest.text === ')') this.fail('unbalanced parentheses: unexpected ")"');
      this.fail(`unexpected ${describe(rest)} (expected "and", "or" or the end)`);
    }
    return expression;
  }

  private or(depth: number): FilterExpression {
    let left = this.and(depth);
    while (this.isWord('or')) {
      this.index += 1;
      left = { kind: 'logical', operator: 'or', left, right: this.and(depth) };
    }
    return left;
  }

  private and(depth: number): FilterExpression {
    let left = this.primary(depth);
    while (this.isWord('and')) {
      this.index += 1;
      left = { kind: 'logical', operator: 'and', left, right: this.primary(depth) };
    }
    return left;
  }

  private primary(depth: number): FilterExpression {
    const token = this.current;
    if (token.type === 'punct' && token.text === '(') {
      if (depth >= MAX_NESTING) this.fail(`parentheses nested deeper than ${MAX_NESTING}`);
      this.index += 1;
      const inner = this.or(depth + 1);
      const close = this.current;
      if (!(close.type === 'punct' && close.text === ')')) {
        if (close.type === 'end') this.fail(`unbalanced parentheses: "(" at position ${token.pos} is never closed`, close);
        this.fail(`unexpected ${describe(close)} (expected "and", "or" or ")")`, close);
      }
      this.index += 1;
      return inner;
    }
    return this.comparison();
  }

  private comparison(): FilterExpression {
    const fieldToken = this.current;
    if (fieldToken.type !== 'word') {
      this.fail(`expected a field name but found ${describe(fieldToken)}`);
    }
    const next = this.tokens[this.index + 1];
    if (next.type === 'punct' && next.text === '(') this.fail(`function ${fieldToken.text}() is not supported (only eq, ne, gt, lt, ge, le joined by and / or)`);
    if (fieldToken.text === 'not') this.fail('operator "not" is not supported');
    if (fieldToken.text === 'and' || fieldToken.text === 'or') this.fail(`expected a field name but found ${describe(fieldToken)}`);
    if (!FIELDS.has(fieldToken.text)) this.fail(unknownName('field', fieldToken.text));
    const field = fieldToken.text as MessageLogField;
    if (++this.comparisons > MAX_COMPARISONS) this.fail(`more than ${MAX_COMPARISONS} comparisons`);
    this.index += 1;

    const operatorToken = this.current;
    if (operatorToken.type !== 'word') this.fail(`expected an operator (eq, ne, gt, lt, ge, le) after ${field} but found ${describe(operatorToken)}`);
    if (!(OPERATORS as readonly string[]).includes(operatorToken.text)) {
      this.fail(`unknown operator "${operatorToken.text}" (expected eq, ne, gt, lt, ge or le)`);
    }
    const operator = operatorToken.text as ComparisonOperator;
    this.index += 1;

    const valueToken = this.current;
    this.index += 1;
    return { kind: 'comparison', operator, field, value: this.literalFor(field, valueToken) };
  }

  private literalFor(field: MessageLogField, token: Token): string | number | null {
    if (token.type === 'word' && token.text === 'null') return null;
    if (token.type === 'end') this.fail(`expected a value after the operator but found end of input`, token);
    if (token.type === 'word') {
      const after = this.tokens[this.index];
      if (after.type === 'punct' && after.text === '(') this.fail(`function ${token.text}() is not supported`, token);
      if (FIELDS.has(token.text)) this.fail(`comparing two fields is not supported ("${token.text}")`, token);
      this.fail(`expected a literal value but found ${describe(token)} (strings are quoted: '…')`, token);
    }
    if (token.type === 'punct') this.fail(`expected a literal value but found ${describe(token)}`, token);
    if (DATE_FIELDS.has(field)) {
      if (token.type !== 'datetime') this.fail(`${field} compares with a datetime'yyyy-mm-ddThh:mm:ss' literal, not ${describe(token)}`, token);
      return token.value;
    }
    if (NUMBER_FIELDS.has(field)) {
      if (token.type !== 'number') this.fail(`${field} compares with a number, not ${describe(token)}`, token);
      return token.value;
    }
    if (token.type !== 'string') this.fail(`${field} compares with a quoted string, not ${describe(token)}`, token);
    return token.value;
  }
}

/** Parses an OData V2 `$filter` on the message log fields; undefined for an empty (or blank) filter. */
export function parseFilter(text: string, option = '$filter'): FilterExpression | undefined {
  const tokens = tokenize(option, text);
  if (tokens.length === 1) return undefined;
  return new FilterParser(tokens, option).parse();
}

// ---------------------------------------------------------------------------------------------------------------
// $orderby, $top, $skip, $inlinecount, $select

/** Parses `Field [asc|desc], …`. */
export function parseOrderBy(text: string, option = '$orderby'): MessageLogQuery['orderBy'] {
  const tokens = tokenize(option, text);
  const orderBy: MessageLogQuery['orderBy'] = [];
  let i = 0;
  if (tokens[0].type === 'end') throw invalidQuery(option, 'expected a field name but found end of input', 0);
  for (;;) {
    const field = tokens[i];
    if (field.type !== 'word') throw invalidQuery(option, `expected a field name but found ${describe(field)}`, field.pos);
    if (!FIELDS.has(field.text)) throw invalidQuery(option, unknownName('field', field.text), field.pos);
    i += 1;
    let direction: 'asc' | 'desc' = 'asc';
    const maybeDirection = tokens[i];
    if (maybeDirection.type === 'word') {
      if (maybeDirection.text !== 'asc' && maybeDirection.text !== 'desc') {
        throw invalidQuery(option, `expected asc or desc but found ${describe(maybeDirection)}`, maybeDirection.pos);
      }
      direction = maybeDirection.text;
      i += 1;
    }
    orderBy.push({ field: field.text as MessageLogField, direction });
    const separator = tokens[i];
    if (separator.type === 'end') return orderBy;
    if (!(separator.type === 'punct' && separator.text === ',')) {
      throw invalidQuery(option, `expected "," or the end but found ${describe(separator)}`, separator.pos);
    }
    i += 1;
  }
}

function parseCount(option: string, text: string): number {
  const trimmed = text.trim();
  let valid = trimmed.length > 0 && trimmed.length <= 15;
  for (const c of trimmed) if (!isDigit(c)) valid = false;
  if (!valid) throw invalidQuery(option, `expected a non-negative integer, got "${text}"`);
  return Number(trimmed);
}

/** Parses `$select=A,B` into property names (selectOption reads an absent, blank or `*` $select as all). */
function parseSelect(text: string, option = '$select'): string[] {
  const tokens = tokenize(option, text);
  const selected: string[] = [];
  let i = 0;
  for (;;) {
    const token = tokens[i];
    if (token.type !== 'word') throw invalidQuery(option, `expected a property name but found ${describe(token)}`, token.pos);
    if (!SELECTABLE_PROPERTIES.includes(token.text)) throw invalidQuery(option, unknownName('property', token.text), token.pos);
    selected.push(token.text);
    i += 1;
    const separator = tokens[i];
    if (separator.type === 'end') return selected;
    if (!(separator.type === 'punct' && separator.text === ',')) {
      throw invalidQuery(option, `expected "," or the end but found ${describe(separator)}`, separator.pos);
    }
    i += 1;
  }
}

export interface MessageLogListRequest {
  query: MessageLogQuery;
  /** Properties to render ($select); undefined: all. */
  select?: string[];
  /** How many records the client asked for in total ($top), undefined when it sent none; the page holds at most MAX_TOP. */
  requestedTop?: number;
}

/** The system query options each resource answers; any other `$` option is a 400. */
const LIST_OPTIONS: ReadonlySet<string> = new Set(['$filter', '$orderby', '$top', '$skip', '$inlinecount', '$format', '$select']);
const ENTITY_OPTIONS: ReadonlySet<string> = new Set(['$format', '$select']);
const FORMAT_ONLY: ReadonlySet<string> = new Set(['$format']);

function decodesAsUtf8(value: string): boolean {
  try {
    decodeURIComponent(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The system query options of a query string (as Fastify parses it), each checked to be one of `known`, given once and
 * decodable. Options without a leading `$` are ignored, as OData's custom query options are; `$format` must ask for JSON.
 */
function systemQueryOptions(raw: Record<string, unknown>, known: ReadonlySet<string>): Record<string, string> {
  const options: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!name.startsWith('$')) continue;
    if (!known.has(name)) {
      throw invalidQuery(name, name === '$expand' ? 'not supported' : `unknown system query option (supported here: ${[...known].join(', ')})`);
    }
    if (typeof value !== 'string') throw invalidQuery(name, 'given more than once');
    if (/%[0-9A-Fa-f]{2}/.test(value) && !decodesAsUtf8(value)) {
      // The query string parser leaves a whole value undecoded when one escape in it is bad: say that, not what it trips on.
      throw invalidQuery(name, 'holds a %-escape that is not UTF-8 (such as %FF), so it could not be decoded');
    }
    options[name] = value;
  }
  const format = options.$format?.trim();
  if (format !== undefined && format !== 'json' && format !== 'application/json') {
    throw invalidQuery('$format', `only json is supported, got "${options.$format}"`);
  }
  return options;
}

/** `$select` as given: undefined (all properties) when absent, blank or `*`. */
function selectOption(text: string | undefined): string[] | undefined {
  return text === undefined || text.trim() === '' || text.trim() === '*' ? undefined : parseSelect(text);
}

/** Reads the list's query string into a MessageLogQuery. `top` is the page size: min($top, MAX_TOP), DEFAULT_TOP without $top. */
export function parseMessageLogListQuery(raw: Record<string, unknown>): MessageLogListRequest {
  const options = systemQueryOptions(raw, LIST_OPTIONS);
  const inlineCount = options.$inlinecount;
  if (inlineCount !== undefined && inlineCount !== 'allpages' && inlineCount !== 'none') {
    throw invalidQuery('$inlinecount', `expected allpages or none, got "${inlineCount}"`);
  }
  const requestedTop = options.$top === undefined ? undefined : parseCount('$top', options.$top);
  const skip = options.$skip === undefined ? 0 : parseCount('$skip', options.$skip);
  const orderBy = options.$orderby === undefined || options.$orderby.trim() === '' ? DEFAULT_ORDER_BY : parseOrderBy(options.$orderby);
  const filter = options.$filter === undefined ? undefined : parseFilter(options.$filter);
  const select = selectOption(options.$select);

  const query: MessageLogQuery = {
    orderBy,
    top: Math.min(requestedTop ?? DEFAULT_TOP, MAX_TOP),
    skip,
    count: inlineCount === 'allpages',
  };
  if (filter) query.filter = filter;
  return { query, select, requestedTop };
}

/** Reads one record's query string (`…('<guid>')`): the properties to render, undefined for all. */
export function parseMessageLogEntityQuery(raw: Record<string, unknown>): { select?: string[] } {
  return { select: selectOption(systemQueryOptions(raw, ENTITY_OPTIONS).$select) };
}

/** Checks the query string of a sub-resource that answers nothing but JSON or text (`…/ErrorInformation[/$value]`). */
export function checkFormatOnlyQuery(raw: Record<string, unknown>): void {
  systemQueryOptions(raw, FORMAT_ONLY);
}

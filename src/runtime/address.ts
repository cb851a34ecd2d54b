import { MessageFailure } from './errors.ts';
import { expressionParts, joinParts, type Expression, type Placeholder } from './expressions.ts';

/** Already percent-encoded octets in a value: kept as they are, so a value a script encoded is not encoded twice. */
const PERCENT_OCTET = /%[0-9A-Fa-f]{2}/g;
/** A UTF-16 surrogate without its pair: encodeURIComponent throws on one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A path segment the URL parser would resolve (`.` / `..`, also percent-encoded): it would leave its place. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** `value` percent-encoded as one URI component: `/ ? # & =` and the like become data, never structure. */
export function encodeUrlValue(value: string): string {
  const text = value.replace(LONE_SURROGATE, '\uFFFD');
  let out = '';
  let last = 0;
  for (const match of text.matchAll(PERCENT_OCTET)) {
    out += encodeURIComponent(text.slice(last, match.index)) + match[0];
    last = match.index + match[0].length;
  }
  return out + encodeURIComponent(text.slice(last));
}

/** Does the origin (scheme, host, port) end within `literal`, given the literal text before it and whether a value was in it? */
function originEndsIn(before: string, valueInOrigin: boolean, literal: string): boolean {
  const text = before + literal;
  const scheme = text.indexOf('://');
  // Without a literal scheme, a value at the start stood for the origin (or more): the next / ? # ends it.
  const from = scheme >= 0 ? scheme + 3 : valueInOrigin ? before.length : -1;
  return from >= 0 && /[/?#]/.test(text.slice(from));
}

/**
 * Compiles an http step's address. A `${…}` value in the path or the query is percent-encoded as data
 * (`../admin?x=1` cannot climb the path or add parameters; percent-escapes already in it are kept); a value
 * in the origin, such as `${property.baseUrl}/orders`, is used as it is. Throws at deploy on an unknown placeholder.
 */
export function compileAddress(text: string): Expression {
  let inOrigin = true;
  let inPath = false;
  let originText = '';
  let valueInOrigin = false;
  const written = expressionParts(text);
  const parts = written.map((part, index): string | Expression => {
    if (typeof part === 'string') {
      if (inOrigin && originEndsIn(originText, valueInOrigin, part)) {
        inOrigin = false;
        inPath = true;
      }
      if (inOrigin) originText += part;
      // Parts are whole literals between placeholders: a ? or # anywhere in one ends the path for what follows.
      if (!inOrigin && /[?#]/.test(part)) inPath = false;
      return part;
    }
    if (inOrigin) {
      valueInOrigin = true;
      return part;
    }
    if (!inPath) return (message) => encodeUrlValue(part(message));
    const before = written[index - 1];
    const after = written[index + 1];
    // A value between two others may make up a segment with them: checked as if alone (strict, never loose).
    const wholeSegment = (typeof before !== 'string' || before.endsWith('/')) && (typeof after !== 'string' || /^[/?#]/.test(after));
    return wholeSegment ? segmentValue(part) : (message) => encodeUrlValue(part(message));
  });
  return joinParts(parts);
}

/** A value that is a whole path segment: encoded, and refused when it is `.` or `..`. */
function segmentValue(placeholder: Placeholder): Expression {
  return (message) => {
    const encoded = encodeUrlValue(placeholder(message));
    if (DOT_SEGMENT.test(encoded)) {
      throw new MessageFailure('RECEIVER_ADDRESS_INVALID', `${placeholder.source} in the receiver address's path is "${encoded}", which would leave its place in the path`, 500);
    }
    return encoded;
  };
}

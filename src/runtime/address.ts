import { MessageFailure } from './errors.ts';
import { expressionParts, type Expression, type Placeholder } from './expressions.ts';

/** A UTF-16 surrogate without its pair: encodeURIComponent throws on one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A path segment the URL parser resolves (`.` / `..`, also percent-encoded): it would leave its place. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
/** What a value inside the host or port may hold: a name, an IPv4 or bracketed IPv6 address, a port. */
const AUTHORITY_VALUE = /^[A-Za-z0-9.\-:[\]]*$/;
/** The scheme an address starts with when it starts with text (`https://`). */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** `value` percent-encoded as one URI component: `/ \ ? # & = %` and the like become data, never structure. */
export function encodeUrlValue(value: string): string {
  return encodeURIComponent(value.replace(LONE_SURROGATE, '\uFFFD'));
}

type Place = 'authority' | 'path' | 'query' | 'fragment';

/** An address as compiled: literal text and value indexes in order, each value's place, the path segments values are part of. */
interface AddressLayout {
  pieces: (string | number)[];
  values: { placeholder: Placeholder; place: Place }[];
  /** Path segments with a value in them, each as its literal text and value indexes. */
  segments: (string | number)[][];
}

/**
 * Finds each value's place from the address's literal text, as an http(s) URL is read: the host and port up to the
 * first `/ \ ? #`, then path segments split at `/` or `\`, the query after `?`, the fragment after `#`. Values are
 * encoded (below), so only literal text can split or end anything.
 */
function layoutOf(parts: (string | Placeholder)[], startsInPath: boolean): AddressLayout {
  const layout: AddressLayout = { pieces: [], values: [], segments: [] };
  let place: Place = startsInPath ? 'path' : 'authority';
  let segment: (string | number)[] = [];
  let segmentHasValue = false;
  const endSegment = () => {
    if (segmentHasValue) layout.segments.push(segment);
    segment = [];
    segmentHasValue = false;
  };
  for (const [index, part] of parts.entries()) {
    if (typeof part !== 'string') {
      layout.values.push({ placeholder: part, place });
      layout.pieces.push(layout.values.length - 1);
      if (place === 'path') {
        segment.push(layout.values.length - 1);
        segmentHasValue = true;
      }
      continue;
    }
    layout.pieces.push(part);
    const scheme = index === 0 ? (SCHEME.exec(part)?.[0] ?? '') : '';
    for (const char of part.slice(scheme.length)) {
      if (place === 'authority' && /[/\\?#]/.test(char)) place = 'path';
      if (place === 'path') {
        if (char === '/' || char === '\\') endSegment();
        else if (char === '?' || char === '#') {
          endSegment();
          place = char === '?' ? 'query' : 'fragment';
        } else segment.push(char);
      } else if (place === 'query' && char === '#') place = 'fragment';
    }
  }
  if (place === 'path') endSegment();
  return layout;
}

/**
 * Compiles an http step's address. A `${…}` value at the very start is used as it is: it may be the whole URL
 * (a script built it) or its scheme and host, so it must never come from a caller. Every other value is data:
 * percent-encoded as one URI component in the path, the query and the fragment (`../admin?x=1` cannot climb the
 * path or add parameters; `%` is encoded too, so a value is never decoded on the way), refused in the host or
 * port unless it is a name, an address or a port, and refused where it makes a path segment `.` or `..`.
 * Throws at deploy on an unknown placeholder.
 */
export function compileAddress(text: string): Expression {
  const parts = expressionParts(text);
  const lead = typeof parts[0] === 'string' ? undefined : parts[0];
  const { pieces, values, segments } = layoutOf(lead ? parts.slice(1) : parts, lead !== undefined);
  return (message) => {
    const texts = values.map(({ placeholder, place }) => {
      const value = placeholder(message);
      if (place !== 'authority') return encodeUrlValue(value);
      if (!AUTHORITY_VALUE.test(value)) throw invalidAddress(`${placeholder.source} in the receiver address's host holds what a host name, address or port cannot`);
      return value;
    });
    for (const segment of segments) {
      let built = '';
      for (const piece of segment) built += typeof piece === 'string' ? piece : texts[piece];
      if (DOT_SEGMENT.test(built)) {
        const first = values[segment.find((piece) => typeof piece === 'number') as number].placeholder;
        throw invalidAddress(`${first.source} makes a segment of the receiver address's path "${built}", which would leave its place in the path`);
      }
    }
    let out = lead ? lead(message) : '';
    for (const piece of pieces) out += typeof piece === 'string' ? piece : texts[piece];
    return out;
  };
}

function invalidAddress(why: string): MessageFailure {
  return new MessageFailure('RECEIVER_ADDRESS_INVALID', why, 500);
}

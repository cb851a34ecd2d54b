import { MessageFailure } from './errors.ts';
import { expressionParts, type Expression, type Placeholder } from './expressions.ts';

/** A UTF-16 surrogate without its pair: encodeURIComponent throws on one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A path segment the URL parser resolves (`.` / `..`, also percent-encoded): it would leave its place. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
/** What a value inside the host or port may hold: an ASCII name (IDNs as xn--), an IPv4 or bracketed IPv6 address, a port. */
const AUTHORITY_VALUE = /^[A-Za-z0-9._\-:[\]]*$/;
/** The scheme an address starts with when it starts with text; an http(s) URL takes any slashes after it. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:[/\\]*/;
/** What the URL parser drops from anywhere in a URL (tab, line feed, carriage return) … */
const DROPPED = /[\t\n\r]/g;
/** … and from its ends (C0 controls and space). */
// eslint-disable-next-line no-control-regex -- these are the very characters the URL parser trims
const TRIMMED = /^[\u0000-\u0020]+|[\u0000-\u0020]+$/g;

/** `value` percent-encoded as one URI component: `/ \ ? # & = %` and the like become data, never structure. */
export function encodeUrlValue(value: string): string {
  return encodeURIComponent(value.replace(LONE_SURROGATE, '\uFFFD'));
}

type Place = 'authority' | 'path' | 'query' | 'fragment';

/** An address as compiled: literal text and value indexes in order, each value's place, what is checked per message. */
interface AddressLayout {
  pieces: (string | number)[];
  values: { placeholder: Placeholder; place: Place }[];
  /** Path segments with a value in them, each as its literal text and value indexes. */
  segments: (string | number)[][];
  /** The host and port as literal text and value indexes, when a value is in them (it must not come out empty). */
  authority?: (string | number)[];
}

/**
 * Finds each value's place from the address's literal text, as an http(s) URL is read: the host and port up to the
 * first `/ \ ? #`, then path segments split at `/` or `\`, the query after `?`, the fragment after `#`. Values are
 * encoded (below), so only literal text can split or end anything.
 */
function layoutOf(parts: (string | Placeholder)[], start: Place): AddressLayout {
  const layout: AddressLayout = { pieces: [], values: [], segments: [] };
  let place: Place = start;
  let segment: (string | number)[] = [];
  const authority: (string | number)[] = [];
  const holdsValue = (pieces: (string | number)[]) => pieces.some((piece) => typeof piece === 'number');
  const endSegment = () => {
    if (holdsValue(segment)) layout.segments.push(segment);
    segment = [];
  };
  for (const part of parts) {
    if (typeof part !== 'string') {
      layout.values.push({ placeholder: part, place });
      const value = layout.values.length - 1;
      layout.pieces.push(value);
      if (place === 'authority') authority.push(value);
      else if (place === 'path') segment.push(value);
      continue;
    }
    layout.pieces.push(part);
    for (const char of part) {
      if (place === 'authority') {
        if (!/[/\\?#]/.test(char)) {
          authority.push(char);
          continue;
        }
        place = 'path';
      }
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
  if (holdsValue(authority)) layout.authority = authority;
  return layout;
}

/**
 * Compiles an http step's address. A `${…}` value at the very start is used as it is: it may be the whole URL
 * (a script built it), its scheme and host, or its scheme alone (`${property.scheme}://…`), so it must never come
 * from a caller; no value may follow it before a literal `/`, `?` or `#`, where it could extend the host. Every
 * other value is data: percent-encoded as one URI component in the path, the query and the fragment (`../admin?x=1`
 * cannot climb the path or add parameters; `%` is encoded too, so a value is never decoded on the way), refused in
 * the host or port unless it is a name, an address or a port (and the host not empty), and refused where it makes a
 * path segment `.` or `..`. Throws at deploy on an unknown placeholder or a value that could extend the host.
 */
export function compileAddress(text: string): Expression {
  // What the URL parser would drop or trim is dropped here first, so that segments are checked as it will read them.
  const parts = expressionParts(text.replace(DROPPED, '').replace(TRIMMED, ''));
  const first = parts[0];
  if (typeof first === 'string') {
    // The scheme and its slashes (any number: http(s) takes them so) are no part of the host.
    const scheme = SCHEME.exec(first)?.[0] ?? '';
    return addressOf(undefined, scheme, layoutOf([first.slice(scheme.length), ...parts.slice(1)], 'authority'));
  }
  if (first === undefined) return () => '';
  const rest = parts.slice(1);
  const next = rest[0];
  const slashes = typeof next === 'string' ? /^:[/\\]+/.exec(next)?.[0] : undefined;
  if (slashes !== undefined) {
    // The leading value was the scheme: the host follows.
    return addressOf(first, slashes, layoutOf([(next as string).slice(slashes.length), ...rest.slice(1)], 'authority'));
  }
  const separator = rest.findIndex((part) => typeof part !== 'string' || /[/\\?#]/.test(part));
  if (separator >= 0 && typeof rest[separator] !== 'string') {
    throw new Error(`${(rest[separator] as Placeholder).source} follows ${first.source} before any "/", "?" or "#", so it could change the receiver's host: build the whole address in a script, or put one of those between them`);
  }
  // Where the leading value ended is not known: what follows it is read as the path (values encoded, dot segments refused).
  return addressOf(first, '', layoutOf(rest, 'path'));
}

/** The address per message: the leading value as it is, then `prefix`, then the laid-out parts with values made safe. */
function addressOf(lead: Placeholder | undefined, prefix: string, { pieces, values, segments, authority }: AddressLayout): Expression {
  return (message) => {
    const texts = values.map(({ placeholder, place }) => {
      const value = placeholder(message);
      if (place !== 'authority') return encodeUrlValue(value);
      if (!AUTHORITY_VALUE.test(value)) throw invalidAddress(`${placeholder.source} in the receiver address's host holds what a host name, address or port cannot`);
      return value;
    });
    if (authority && authority.every((piece) => (typeof piece === 'string' ? piece : texts[piece]) === '')) {
      throw invalidAddress(`${values[authority.find((piece) => typeof piece === 'number') as number].placeholder.source} leaves the receiver address without a host`);
    }
    for (const segment of segments) {
      let built = '';
      for (const piece of segment) built += typeof piece === 'string' ? piece : texts[piece];
      if (DOT_SEGMENT.test(built)) {
        const firstValue = values[segment.find((piece) => typeof piece === 'number') as number].placeholder;
        throw invalidAddress(`${firstValue.source} makes a segment of the receiver address's path "${built}", which would leave its place in the path`);
      }
    }
    let out = (lead ? lead(message) : '') + prefix;
    for (const piece of pieces) out += typeof piece === 'string' ? piece : texts[piece];
    return out;
  };
}

function invalidAddress(why: string): MessageFailure {
  return new MessageFailure('RECEIVER_ADDRESS_INVALID', why, 500);
}

import type { Message } from './message.ts';

/** A compiled `${…}` expression: text with placeholders, evaluated against a message. */
export type Expression = (message: Message) => string;

const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** Java-style date pattern letters formatDate knows, and quoted text. Zones are UTC: XXX and X give Z, Z gives +0000. */
const DATE_TOKENS = /yyyy|yy|MM|dd|HH|mm|ss|SSS|XXX|X|Z|'([^']*)'/g;

/** Formats a date with Java-style pattern letters (DATE_TOKENS), in UTC, as CPI's ${date:now:…}. */
export function formatDate(date: Date, pattern: string): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const fields: Record<string, string> = {
    yyyy: String(date.getUTCFullYear()),
    yy: pad(date.getUTCFullYear() % 100),
    MM: pad(date.getUTCMonth() + 1),
    dd: pad(date.getUTCDate()),
    HH: pad(date.getUTCHours()),
    mm: pad(date.getUTCMinutes()),
    ss: pad(date.getUTCSeconds()),
    SSS: pad(date.getUTCMilliseconds(), 3),
    XXX: 'Z',
    X: 'Z',
    Z: '+0000',
  };
  return pattern.replace(DATE_TOKENS, (token, quoted: string | undefined) => (quoted !== undefined ? quoted : fields[token]));
}

function placeholder(source: string): Expression {
  if (source.includes('${')) throw new Error(`\${…} cannot be nested: \${${source}}`);
  const [head, ...rest] = source.trim().split('.');
  const name = rest.join('.');
  if (head === 'header' && name) return (m) => m.getHeader(name) ?? '';
  if (head === 'property' && name) {
    return (m) => {
      const value = m.getProperty(name);
      if (value === undefined || value === null) return '';
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    };
  }
  const whole = source.trim();
  if (whole === 'body' || whole === 'in.body') return (m) => m.getBodyAsString();
  if (whole === 'messageId') return (m) => m.id;
  if (whole === 'correlationId') return (m) => m.correlationId;
  if (whole.startsWith('date:now')) {
    const pattern = whole.slice('date:now'.length).replace(/^:/, '') || "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'";
    // Letters outside quotes that are not pattern letters would be copied as they are: a typo, or a letter not supported.
    const unknown = pattern.replace(DATE_TOKENS, '').match(/[A-Za-z]/);
    if (unknown) throw new Error(`\${${source}}: "${unknown[0]}" is not a date pattern letter (yyyy yy MM dd HH mm ss SSS XXX Z; quote text as 'T')`);
    return () => formatDate(new Date(), pattern);
  }
  throw new Error(`unknown expression \${${source}}: use \${header.X}, \${property.x}, \${body}, \${messageId}, \${correlationId} or \${date:now:yyyy-MM-dd}`);
}

/** A compiled placeholder, with its text as written (`${property.id}`) for messages. */
export type Placeholder = Expression & { readonly source: string };

/** Text with `${…}` placeholders as its parts: literal text, and each placeholder compiled. Throws on an unknown placeholder. */
export function expressionParts(text: string): (string | Placeholder)[] {
  const parts: (string | Placeholder)[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(Object.assign(placeholder(match[1]), { source: match[0] }));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  const unclosed = parts.find((part) => typeof part === 'string' && part.includes('${'));
  if (typeof unclosed === 'string') {
    // Quoted from the \${ on: the text before it may hold a parameter's value (a key, say).
    const at = unclosed.indexOf('${');
    throw new Error(`\${ without its closing }: "${unclosed.slice(at, at + 60)}"`);
  }
  return parts;
}

/** Compiles text with `${…}` placeholders once; throws at deploy on an unknown placeholder. */
export function compileExpression(text: string): Expression {
  return joinParts(expressionParts(text));
}

/** One expression of parts: literal text as it is, each placeholder's value in its place. */
export function joinParts(parts: (string | Expression)[]): Expression {
  if (parts.length === 0) return () => '';
  if (parts.length === 1) {
    const only = parts[0];
    return typeof only === 'string' ? () => only : only;
  }
  return (message) => {
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : part(message);
    return out;
  };
}

/** True when the text holds no placeholder (so it can be used as it is). */
export function isConstant(text: string): boolean {
  return !/\$\{/.test(text);
}

/** Any of these anywhere in a header's name makes its value a credential (`appkey`, `X-Authz`, `Cookie2`, `api-keys`). */
const CREDENTIAL_IN_NAME = /auth|key|token|secret|cookie|session|passw|pwd|credential|jwt|assertion|signature|hmac|bearer|passphrase/i;
/**
 * Standard headers whose names say auth, key or credentials but whose values are not credentials: challenges, an
 * answer's parameters, CORS's `true`, a WebSocket handshake's nonces. Anything else that matches counts as one:
 * better a header held back (a deploy warning says so when a flow lists it) than a secret passed on.
 */
const NOT_CREDENTIALS = new Set(['www-authenticate', 'proxy-authenticate', 'authentication-info', 'access-control-allow-credentials', 'sec-websocket-key', 'sec-websocket-accept']);

/** Whether a header's value is a credential, by its name: never echoed to a caller, and scrubbed from receivers' answers. */
export function isSensitiveHeader(name: string): boolean {
  return CREDENTIAL_IN_NAME.test(name) && !NOT_CREDENTIALS.has(name.toLowerCase());
}

/**
 * Replaces every occurrence of each secret in `text` with [Redacted]. For text that came from
 * elsewhere (a receiver's or token endpoint's error body) and may echo what was sent to it.
 */
function redactValues(text: string, secrets: Iterable<string | undefined>): string {
  let out = text;
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join('[Redacted]');
  return out;
}

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 §2.3.1 for a Basic-auth half). */
export function formEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/%20/g, '+')
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Base64 characters, either alphabet: a run of them around a secret's base64 is replaced whole. */
const BASE64_CHAR = /[A-Za-z0-9+/_=-]/;

/** Every form in which a secret sent elsewhere can come back: as it is, encoded as a form body or URL part, JSON- or HTML-escaped, in hex. */
function sentForms(secrets: readonly (string | undefined)[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    forms.add(secret).add(encodeURIComponent(secret)).add(formEncode(secret)).add(new URLSearchParams([['', secret]]).toString().slice(1));
    forms.add(JSON.stringify(secret).slice(1, -1)).add(htmlEscaped(secret)).add(Buffer.from(secret).toString('hex'));
  }
  return [...forms].filter((form) => form.length >= 4);
}

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function htmlEscaped(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ENTITIES[char]);
}

/**
 * How `form` shows inside longer base64 text (a Basic header's `id:secret`): for each of the three ways it can
 * line up with base64's 3-byte groups, the characters that only its own bytes decide, in both alphabets.
 */
function base64Cores(form: string): string[] {
  const bytes = Buffer.from(form);
  const cores: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    const core = encoded.slice(shift === 0 ? 0 : 4, Math.floor((shift + bytes.length) / 3) * 4);
    // Shorter than 8 characters (6 bytes) a core would match unrelated text.
    if (core.length >= 8) cores.push(core, core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return cores;
}

/** Replaces the whole base64 run around each place `core` appears. */
function redactBase64Runs(text: string, cores: readonly string[]): string {
  let out = text;
  for (const core of cores) {
    for (let at = out.indexOf(core); at >= 0; at = out.indexOf(core, at + 1)) {
      let start = at;
      let end = at + core.length;
      while (start > 0 && BASE64_CHAR.test(out[start - 1])) start--;
      while (end < out.length && BASE64_CHAR.test(out[end])) end++;
      out = `${out.slice(0, start)}[Redacted]${out.slice(end)}`;
    }
  }
  return out;
}

/**
 * `text` with every secret replaced by [Redacted] in every form a server may echo it back in: as sent, form- or
 * URL-encoded, JSON- or HTML-escaped, in hex, and inside base64 (a Basic header's `id:secret`, however it lines
 * up). For text from elsewhere (a receiver's or a token endpoint's error body, a script's error) that may quote
 * what it was given. Forms shorter than 4 characters are left: they would match ordinary text.
 */
export function redactEchoes(text: string, secrets: Iterable<string | undefined>): string {
  const forms = sentForms([...secrets]);
  if (forms.length === 0) return text;
  // Longest first: a form that holds a shorter one is replaced whole.
  const out = redactValues(text, forms.sort((a, b) => b.length - a.length));
  return redactBase64Runs(out, forms.flatMap(base64Cores));
}

/** What an Authorization-like header value gives away: the whole value, its credential part, a Basic password. */
export function secretsOfHeaderValue(value: string): string[] {
  const secrets = [value];
  const space = value.indexOf(' ');
  if (space > 0) {
    const credential = value.slice(space + 1).trim();
    secrets.push(credential);
    if (/^basic$/i.test(value.slice(0, space))) {
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      secrets.push(decoded, decoded.slice(decoded.indexOf(':') + 1));
    }
  }
  return secrets;
}

// A credential is a token of 8 or more token characters: "Basic auth required" keeps its words.
const CREDENTIAL_IN_TEXT = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;

/** `Bearer …` and `Basic …` anywhere in a text, with their credential replaced: for error texts scripts write. */
export function redactCredentialsInText(text: string): string {
  return text.replace(CREDENTIAL_IN_TEXT, '$1 [Redacted]');
}

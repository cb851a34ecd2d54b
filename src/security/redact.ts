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

/** A secret's forms as a server may echo it (as it is, form- or URL-encoded, JSON- or HTML-escaped, in hex) and their base64 cores. */
interface EchoForms {
  forms: string[];
  cores: string[];
}

function echoFormsOf(secret: string): EchoForms {
  // What a Basic header or a form body can carry (inside base64 too), then the escapes a server may write it in.
  const sent = [...new Set([secret, encodeURIComponent(secret), formEncode(secret), new URLSearchParams([['', secret]]).toString().slice(1)])];
  const forms = [...new Set([...sent, JSON.stringify(secret).slice(1, -1), htmlEscaped(secret), Buffer.from(secret).toString('hex')])];
  return { forms: forms.filter((form) => form.length >= 4), cores: sent.flatMap(base64Cores) };
}

/**
 * The forms of secrets looked for again and again (a message's, in every failure text and every line its scripts
 * log), kept so that each search does not build them anew. Bounded by their total length; emptied when full.
 */
const KEPT_FORMS = new Map<string, EchoForms>();
let keptChars = 0;
const MAX_KEPT_CHARS = 4_000_000;

function keptEchoFormsOf(secret: string): EchoForms {
  let kept = KEPT_FORMS.get(secret);
  if (kept === undefined) {
    kept = echoFormsOf(secret);
    const chars = [...kept.forms, ...kept.cores].reduce((sum, form) => sum + form.length, 0);
    if (keptChars + chars > MAX_KEPT_CHARS) {
      KEPT_FORMS.clear();
      keptChars = 0;
    }
    if (chars <= MAX_KEPT_CHARS / 16) {
      KEPT_FORMS.set(secret, kept);
      keptChars += chars;
    }
  }
  return kept;
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
 * what it was given. Secrets and forms shorter than 4 characters are left: they would match ordinary text.
 */
export function redactEchoes(text: string, secrets: Iterable<string | undefined>): string {
  return redactForms(text, secrets, echoFormsOf);
}

/** redactEchoes for secrets looked for again and again (runtime/secrets.ts): their forms are kept between calls. */
export function redactKnownEchoes(text: string, secrets: Iterable<string | undefined>): string {
  return redactForms(text, secrets, keptEchoFormsOf);
}

function redactForms(text: string, secrets: Iterable<string | undefined>, formsOf: (secret: string) => EchoForms): string {
  // Only the forms the text holds are replaced: most texts hold none, and cost a search per form.
  let found: string[] | undefined;
  let foundCores: string[] | undefined;
  for (const secret of secrets) {
    if (!secret || secret.length < 4) continue;
    const { forms, cores } = formsOf(secret);
    for (const form of forms) if (text.includes(form)) (found ??= []).push(form);
    for (const core of cores) if (text.includes(core)) (foundCores ??= []).push(core);
  }
  // Longest first: a form that holds a shorter one is replaced whole.
  const out = found ? redactValues(text, found.sort((a, b) => b.length - a.length)) : text;
  return foundCores ? redactBase64Runs(out, foundCores) : out;
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

/** The words of a header name that make it a credential's: `X-API-Key`, `X-Auth-Token`, `X-Session-Id`, `apiKey`. */
const CREDENTIAL_WORDS = new Set(['auth', 'authorization', 'key', 'apikey', 'token', 'secret', 'cookie', 'session', 'sessionid', 'password', 'passwd', 'credential', 'credentials']);
/** Words run together: `Authtoken`, `Clientsecret`, `Accesskey` (but not `Monkey`). */
const CREDENTIAL_WORD_ENDING = /(?:token|secret|password|passwd|(?:api|access|secret|private|auth|subscription|session|master|function|client|shared|signing|license)key)$/;
/** Where a header name's words part: at `-`, `_`, `.` or a space, and where camelCase goes from lower to upper. */
const WORD_BREAK = /[-_.\s]+|(?<=[a-z0-9])(?=[A-Z])/;
/** Header names seen, and whether each is sensitive: names repeat on every message, splitting them need not. */
const sensitiveByName = new Map<string, boolean>();
const MAX_REMEMBERED_NAMES = 1000;

/**
 * Whether a header's value is a credential, by the words of its name: never echoed, never replied, never logged.
 * Whole words, so `X-Monkey`, `X-Keyword` and `WWW-Authenticate` (a challenge) are not.
 */
export function isSensitiveHeader(name: string): boolean {
  let sensitive = sensitiveByName.get(name);
  if (sensitive === undefined) {
    sensitive = name.split(WORD_BREAK).some((word) => {
      const lower = word.toLowerCase();
      return CREDENTIAL_WORDS.has(lower) || CREDENTIAL_WORD_ENDING.test(lower);
    });
    if (sensitiveByName.size >= MAX_REMEMBERED_NAMES) sensitiveByName.clear();
    sensitiveByName.set(name, sensitive);
  }
  return sensitive;
}

/**
 * Replaces every occurrence of each secret in `text` with [Redacted]. For text that came from
 * elsewhere (a receiver's or token endpoint's error body) and may echo what was sent to it.
 */
export function redactValues(text: string, secrets: Iterable<string | undefined>): string {
  let out = text;
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join('[Redacted]');
  return out;
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

/** Any of these anywhere in a header's name makes its value a credential (`appkey`, `X-Authz`, `Cookie2`, `api-keys`). */
const CREDENTIAL_IN_NAME = /auth|key|token|secret|cookie|session|passw|pwd|credential|jwt|assertion|signature|hmac|bearer|passphrase/i;
/**
 * Standard headers whose names say auth, key or credentials but whose values are not credentials: challenges,
 * an answer's parameters, CORS's `true`, a WebSocket handshake's nonces. Anything else that matches counts as one: better a header held back
 * (a deploy warning says so when a flow lists it) than a secret passed on.
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

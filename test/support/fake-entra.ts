// A stand-in for Microsoft Entra ID (v2 endpoints) that tests start on loopback.
// It follows the behaviour in /work/shared/MICROSOFT.md closely enough that code which
// works against it should work against login.microsoftonline.com, and it lets tests
// inject the failures real Entra produces (expired grants, wrong secrets, outages, slowness).
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { delayUnlessGone } from './delay.ts';

export const DEFAULT_USER = 'alice@contoso.example';
/** Tenant id (`tid`) used when the tenant path segment is not itself a GUID (`common`, a domain…). */
export const DEFAULT_TENANT_ID = '72f988bf-0000-4000-8000-00000000c0de';

export interface FakeEntraOptions {
  /** UPN of the user the "login page" signs in (default alice@contoso.example). */
  user?: string;
  /** Display name for the id_token `name` claim (default: the UPN's local part, capitalised). */
  userName?: string;
  tenantId?: string;
  /** `expires_in` of access tokens (default 3600). */
  accessTokenLifetimeSeconds?: number;
  /** Authorization code lifetime (default 600, as Entra's ~10 minutes). */
  codeLifetimeSeconds?: number;
  /** Reject authorize requests without an S256 code_challenge (default true: iflow must always send PKCE). */
  requirePkce?: boolean;
  /** Clock in epoch ms, for expiry decisions (default Date.now). */
  now?: () => number;
}

export interface ClientRegistration {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

/** A failure to answer instead of a real token response. */
export interface TokenErrorSpec {
  status: number;
  error: string;
  errorCodes: number[];
  /** Human text after "AADSTSnnnn: "; a generic text is used when omitted. */
  description?: string;
  retryAfterSeconds?: number;
}

export type ClientAuthMethod = 'body' | 'basic' | 'none';

export interface TokenRequestRecord {
  grantType: string;
  clientId: string | undefined;
  clientAuth: ClientAuthMethod;
  at: Date;
  tenant: string;
  scope: string | undefined;
  /** The refresh token presented (refresh_token grant only). */
  refreshToken: string | undefined;
  /** True when the answer came from failNextTokenRequests. */
  injected: boolean;
  /** HTTP status answered, set just before the response is written. */
  status?: number;
  /** OAuth `error` answered, if any. */
  error?: string;
}

export interface AuthorizeRequestRecord {
  tenant: string;
  query: Record<string, string>;
  at: Date;
  outcome: 'code' | 'declined' | 'redirected-error' | 'error-page';
  /** Headers a real browser would not send to Entra, kept so tests can assert they were not. */
  authorization: string | undefined;
  cookie: string | undefined;
}

export type AccessTokenInfo =
  | { valid: true; user: string | undefined; scope: string; clientId: string; tenantId: string; expiresAt: Date; kind: 'delegated' | 'app' }
  | { valid: false; reason: 'unknown' | 'expired' };

export interface RefreshTokenInfo {
  token: string;
  clientId: string;
  user: string;
  /** Full scope of the grant the token belongs to. */
  scope: string;
  issuedAt: Date;
  /** All tokens rotated from one authorization share a grant id. */
  grantId: string;
  /** How many times it was presented successfully. */
  redeemed: number;
  revoked: boolean;
}

interface SignedInUser {
  upn: string;
  name: string;
  oid: string;
}

interface Grant {
  grantId: string;
  clientId: string;
  user: SignedInUser;
  scope: string[];
  tenantId: string;
  nonce: string | undefined;
}

interface AuthorizationCode {
  grant: Grant;
  redirectUri: string;
  codeChallenge: string | undefined;
  expiresAt: number;
  redeemed: boolean;
}

interface AccessTokenRecord {
  clientId: string;
  user: string | undefined;
  scope: string;
  tenantId: string;
  expiresAt: number;
  expired: boolean;
}

interface RefreshTokenRecord {
  grant: Grant;
  issuedAt: number;
  redeemed: number;
  revoked: boolean;
}

interface RegisteredClient extends ClientRegistration {
  secretExpired: boolean;
}

/** Thrown inside the token handler; turned into Entra's error JSON. */
class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly codes: number[],
    readonly text: string,
  ) {
    super(text);
  }
}

// Scopes Entra treats as OpenID Connect ones rather than resource permissions.
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
const GENERIC_TEXT: Record<number, string> = {
  70008: 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  700082: 'The refresh token has expired due to inactivity. The token was issued on a date long ago and was inactive for 90.00:00:00.',
  50173: 'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.',
  54005: 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  65001: 'The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.',
  50076: 'Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.',
  53003: 'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
  7000222: 'The provided client secret keys for the app are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret.',
  7000215: 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
  50196: 'The server terminated an operation because it encountered a client request loop.',
};

const base64url = (bytes: Buffer): string => bytes.toString('base64url');
const randomToken = (bytes = 32): string => base64url(randomBytes(bytes));
const s256 = (verifier: string): string => base64url(createHash('sha256').update(verifier, 'ascii').digest());
const splitScope = (scope: string | undefined): string[] => (scope ?? '').split(/\s+/).filter(Boolean);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A stable GUID-shaped object id for a UPN, so `oid` does not change between sign-ins. */
function oidFor(upn: string): string {
  const h = createHash('sha256').update(upn.toLowerCase()).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function defaultName(upn: string): string {
  const local = upn.split('@')[0] ?? upn;
  return local.charAt(0).toUpperCase() + local.slice(1);
}

/** Entra's timestamp format in error bodies: "2024-05-01 10:20:30Z". */
function entraTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** application/x-www-form-urlencoded decoding of one Basic-auth half (RFC 6749 §2.3.1). */
function formDecode(value: string): string {
  const spaced = value.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced; // not valid form encoding: compare as is (and most likely fail)
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** First value of each query parameter (Fastify gives arrays for repeated keys). */
function flatQuery(query: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') out[key] = first;
  }
  return out;
}


export class FakeEntra {
  /** Every token request, in arrival order (including injected failures). */
  readonly tokenRequests: TokenRequestRecord[] = [];
  /** Every authorize request, in arrival order. */
  readonly authorizeRequests: AuthorizeRequestRecord[] = [];
  /** Key for the HS256 id_token signature (tests rarely need it; the payload is what matters). */
  readonly idTokenSigningKey = 'fake-entra-id-token-signing-key';

  private readonly app: FastifyInstance;
  private baseUrl = '';
  private readonly clients = new Map<string, RegisteredClient>();
  private readonly codes = new Map<string, AuthorizationCode>();
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  private readonly refreshTokenOrder: string[] = [];
  private readonly closing = new AbortController();
  private readonly now: () => number;
  private readonly codeLifetimeMs: number;
  private readonly requirePkce: boolean;
  private readonly tenantId: string;
  private user: SignedInUser;
  private accessTokenLifetimeSeconds: number;
  private nextAuthorizeOutcome: 'consent' | 'decline' = 'consent';
  private injected: { remaining: number; spec: TokenErrorSpec } | undefined;
  private revocation: TokenErrorSpec | undefined;
  private tokenDelayMs = 0;
  private tokenPaddingBytes = 0;

  constructor(options: FakeEntraOptions = {}) {
    this.now = options.now ?? Date.now;
    this.codeLifetimeMs = (options.codeLifetimeSeconds ?? 600) * 1000;
    this.requirePkce = options.requirePkce ?? true;
    this.tenantId = options.tenantId ?? DEFAULT_TENANT_ID;
    this.accessTokenLifetimeSeconds = options.accessTokenLifetimeSeconds ?? 3600;
    const upn = options.user ?? DEFAULT_USER;
    this.user = { upn, name: options.userName ?? defaultName(upn), oid: oidFor(upn) };
    this.app = Fastify({ logger: false, forceCloseConnections: true });
    this.routes();
  }

  get url(): string {
    return this.baseUrl;
  }

  authorizeUrl(tenant: string): string {
    return `${this.baseUrl}/${tenant}/oauth2/v2.0/authorize`;
  }

  tokenUrl(tenant: string): string {
    return `${this.baseUrl}/${tenant}/oauth2/v2.0/token`;
  }

  async listen(): Promise<void> {
    this.baseUrl = await this.app.listen({ port: 0, host: '127.0.0.1' });
  }

  async close(): Promise<void> {
    this.closing.abort();
    await this.app.close();
  }

  // ---- configuration -------------------------------------------------------

  /** Registers (or replaces) an app registration; a replaced client's secret is no longer expired. */
  registerClient(client: ClientRegistration): void {
    this.clients.set(client.clientId, { ...client, redirectUris: [...client.redirectUris], secretExpired: false });
  }

  /** The client's secret now fails with invalid_client AADSTS7000222 (secret expired). */
  expireClientSecret(clientId: string): void {
    const client = this.clients.get(clientId);
    if (!client) throw new Error(`fake-entra: unknown client ${clientId}`);
    client.secretExpired = true;
  }

  /** Changes who the "login page" signs in from now on. */
  setUser(upn: string, name = defaultName(upn)): void {
    this.user = { upn, name, oid: oidFor(upn) };
  }

  /** The next authorize request (only that one) consents or declines. */
  setNextAuthorizeOutcome(outcome: 'consent' | 'decline'): void {
    this.nextAuthorizeOutcome = outcome;
  }

  setAccessTokenLifetimeSeconds(seconds: number): void {
    this.accessTokenLifetimeSeconds = seconds;
  }

  /** Pads every successful token response with a field of `bytes` characters (0 turns it off): an oversized answer. */
  setTokenPaddingBytes(bytes: number): void {
    this.tokenPaddingBytes = bytes;
  }

  private padded(body: Record<string, unknown>): Record<string, unknown> {
    return this.tokenPaddingBytes > 0 ? { ...body, padding: 'x'.repeat(this.tokenPaddingBytes) } : body;
  }

  /** Delays every token response by `ms` (0 turns it off); aborted early on close or client disconnect. */
  setTokenDelayMs(ms: number): void {
    this.tokenDelayMs = ms;
  }

  /** The next `n` token requests get `spec` instead of being processed (they are still recorded). */
  failNextTokenRequests(n: number, spec: TokenErrorSpec): void {
    this.injected = n > 0 ? { remaining: n, spec } : undefined;
  }

  /**
   * Every refresh token issued so far becomes invalid: refreshing gives invalid_grant with
   * AADSTS70008, or the given codes (e.g. [700082] inactivity, [50173] password reset).
   * Tokens issued afterwards (a new authorization) work.
   */
  revokeRefreshTokens(spec: Partial<TokenErrorSpec> = {}): void {
    for (const record of this.refreshTokens.values()) record.revoked = true;
    this.revocation = { status: spec.status ?? 400, error: spec.error ?? 'invalid_grant', errorCodes: spec.errorCodes ?? [70008], description: spec.description };
  }

  /** All access tokens issued so far count as expired (Graph answers 401 to them). */
  expireAccessTokens(): void {
    for (const record of this.accessTokens.values()) record.expired = true;
  }

  /** All unredeemed authorization codes expire (redeeming one gives AADSTS70008). */
  expireAuthorizationCodes(): void {
    for (const code of this.codes.values()) code.expiresAt = 0;
  }

  // ---- inspection ----------------------------------------------------------

  countTokenRequests(grantType?: string): number {
    return this.tokenRequests.filter((r) => grantType === undefined || r.grantType === grantType).length;
  }

  /** Clears the request logs (not tokens, clients or injected failures). */
  resetCounters(): void {
    this.tokenRequests.length = 0;
    this.authorizeRequests.length = 0;
  }

  validateAccessToken(token: string): AccessTokenInfo {
    const record = this.accessTokens.get(token);
    if (!record) return { valid: false, reason: 'unknown' };
    if (record.expired || record.expiresAt <= this.now()) return { valid: false, reason: 'expired' };
    return {
      valid: true,
      user: record.user,
      scope: record.scope,
      clientId: record.clientId,
      tenantId: record.tenantId,
      expiresAt: new Date(record.expiresAt),
      kind: record.user === undefined ? 'app' : 'delegated',
    };
  }

  /** Refresh tokens in the order they were issued (the last is the newest). */
  get issuedRefreshTokens(): string[] {
    return [...this.refreshTokenOrder];
  }

  get latestRefreshToken(): string | undefined {
    return this.refreshTokenOrder.at(-1);
  }

  get issuedAccessTokens(): string[] {
    return [...this.accessTokens.keys()];
  }

  refreshTokenInfo(token: string): RefreshTokenInfo | undefined {
    const record = this.refreshTokens.get(token);
    if (!record) return undefined;
    const { grant } = record;
    return {
      token,
      clientId: grant.clientId,
      user: grant.user.upn,
      scope: grant.scope.join(' '),
      issuedAt: new Date(record.issuedAt),
      grantId: grant.grantId,
      redeemed: record.redeemed,
      revoked: record.revoked,
    };
  }

  // ---- HTTP ----------------------------------------------------------------

  private routes(): void {
    // Entra reads only form bodies; anything else looks like an empty form (→ AADSTS900144).
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    this.app.get('/:tenant/oauth2/v2.0/authorize', (req, reply) => this.authorize(req, reply));
    this.app.post('/:tenant/oauth2/v2.0/token', (req, reply) => this.token(req, reply));
  }

  private authorize(req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const { tenant } = req.params as { tenant: string };
    const q = flatQuery(req.query);
    const record: AuthorizeRequestRecord = {
      tenant,
      query: q,
      at: new Date(this.now()),
      outcome: 'error-page',
      authorization: req.headers.authorization,
      cookie: req.headers.cookie,
    };
    this.authorizeRequests.push(record);
    const outcome = this.nextAuthorizeOutcome;
    this.nextAuthorizeOutcome = 'consent';

    // Without a trusted redirect URI Entra shows its error page instead of redirecting.
    const client = this.clients.get(q.client_id ?? '');
    if (!client) {
      return this.errorPage(reply, 700016, `Application with identifier '${q.client_id ?? ''}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
    }
    const redirectUri = q.redirect_uri ?? '';
    if (!client.redirectUris.includes(redirectUri)) {
      return this.errorPage(reply, 50011, `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${client.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`);
    }

    const back = (params: Record<string, string>, kind: AuthorizeRequestRecord['outcome']): FastifyReply => {
      record.outcome = kind;
      const target = new URL(redirectUri);
      for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
      if (q.state !== undefined) target.searchParams.set('state', q.state);
      return reply.redirect(target.toString(), 302);
    };
    const fail = (error: string, code: number, text: string): FastifyReply => {
      const description = `AADSTS${code}: ${text}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${entraTimestamp(this.now())}`;
      return back({ error, error_description: description, error_uri: `${this.baseUrl}/error?code=${code}` }, error === 'access_denied' ? 'declined' : 'redirected-error');
    };

    if (q.response_type !== 'code') return fail('unsupported_response_type', 70005, `response_type '${q.response_type ?? ''}' is not supported (fake-entra supports 'code').`);
    if (!q.scope) return fail('invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
    if (q.code_challenge !== undefined && q.code_challenge_method !== 'S256') {
      return fail('invalid_request', 9002313, `Invalid request. code_challenge_method '${q.code_challenge_method ?? 'plain'}' is not accepted (fake-entra accepts only S256).`);
    }
    if (this.requirePkce && !q.code_challenge) return fail('invalid_request', 9002325, 'Proof Key for Code Exchange is required for cross-origin authorization code redemption.');
    if (outcome === 'decline') return fail('access_denied', 65004, 'User declined to consent to access the app.');

    const code = randomToken(48);
    this.codes.set(code, {
      grant: { grantId: randomUUID(), clientId: client.clientId, user: this.user, scope: splitScope(q.scope), tenantId: this.tenantIdFor(tenant), nonce: q.nonce },
      redirectUri,
      codeChallenge: q.code_challenge,
      expiresAt: this.now() + this.codeLifetimeMs,
      redeemed: false,
    });
    return back({ code, session_state: randomUUID() }, 'code');
  }

  private errorPage(reply: FastifyReply, code: number, text: string): FastifyReply {
    const html = `<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><h1>Sign in</h1><p>Sorry, but we’re having trouble signing you in.</p><p id="error">AADSTS${code}: ${escapeHtml(text)}</p></body></html>`;
    return reply.code(400).type('text/html; charset=utf-8').send(html);
  }

  private async token(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const { tenant } = req.params as { tenant: string };
    const isForm = String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
    const params = new URLSearchParams(isForm && typeof req.body === 'string' ? req.body : '');
    const record: TokenRequestRecord = {
      grantType: params.get('grant_type') ?? '',
      ...peekClient(req.headers.authorization, params),
      at: new Date(this.now()),
      tenant,
      scope: params.get('scope') ?? undefined,
      refreshToken: params.get('refresh_token') ?? undefined,
      injected: false,
    };
    this.tokenRequests.push(record);
    const correlationId = String(req.headers['client-request-id'] ?? randomUUID());

    if (this.tokenDelayMs > 0) await delayUnlessGone(reply, this.tokenDelayMs, this.closing.signal);

    let status: number;
    let body: Record<string, unknown>;
    try {
      if (this.injected) {
        const spec = this.injected.spec;
        if (--this.injected.remaining <= 0) this.injected = undefined;
        record.injected = true;
        if (spec.retryAfterSeconds !== undefined) reply.header('retry-after', String(spec.retryAfterSeconds));
        throw new EntraError(spec.status, spec.error, spec.errorCodes, spec.description ?? GENERIC_TEXT[spec.errorCodes[0] ?? 0] ?? 'Injected failure (fake-entra).');
      }
      const auth = this.readClientAuth(req.headers.authorization, params);
      body = this.grant(params, auth, tenant);
      status = 200;
    } catch (err) {
      if (!(err instanceof EntraError)) throw err;
      status = err.status;
      body = this.errorBody(err, correlationId);
      record.error = err.error;
    }
    record.status = status;
    return reply
      .code(status)
      .headers({ 'cache-control': 'no-store, no-cache', pragma: 'no-cache', 'x-ms-request-id': randomUUID(), 'client-request-id': correlationId })
      .send(body);
  }


  private readClientAuth(header: string | undefined, params: URLSearchParams): { clientId: string | undefined; clientSecret: string | undefined; method: ClientAuthMethod } {
    const basic = /^Basic\s+(\S+)\s*$/i.exec(header ?? '');
    if (!basic) {
      const clientSecret = params.get('client_secret') ?? undefined;
      return { clientId: params.get('client_id') ?? undefined, clientSecret, method: clientSecret === undefined ? 'none' : 'body' };
    }
    const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new EntraError(401, 'invalid_client', [7000216], "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    const clientId = formDecode(decoded.slice(0, colon));
    const clientSecret = formDecode(decoded.slice(colon + 1));
    // RFC 6749 §2.3: a client must not use more than one authentication method per request.
    if (params.has('client_secret')) throw new EntraError(400, 'invalid_request', [9002313], 'Invalid request. Request is malformed or invalid: client credentials sent both in the Authorization header and in the body.');
    const bodyId = params.get('client_id');
    if (bodyId !== null && bodyId !== clientId) throw new EntraError(400, 'invalid_request', [9002313], 'Invalid request. Request is malformed or invalid: client_id in the body differs from the Authorization header.');
    return { clientId, clientSecret, method: 'basic' };
  }

  private authenticateClient(auth: { clientId: string | undefined; clientSecret: string | undefined }, tenant: string): RegisteredClient {
    if (!auth.clientId) throw new EntraError(400, 'invalid_request', [900144], "The request body must contain the following parameter: 'client_id'.");
    const client = this.clients.get(auth.clientId);
    if (!client) throw new EntraError(400, 'unauthorized_client', [700016], `Application with identifier '${auth.clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
    if (auth.clientSecret === undefined) throw new EntraError(401, 'invalid_client', [7000218], "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    if (auth.clientSecret !== client.clientSecret) throw new EntraError(401, 'invalid_client', [7000215], `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${client.clientId}'.`);
    if (client.secretExpired) throw new EntraError(401, 'invalid_client', [7000222], `The provided client secret keys for app '${client.clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
    return client;
  }

  private grant(params: URLSearchParams, auth: { clientId: string | undefined; clientSecret: string | undefined }, tenant: string): Record<string, unknown> {
    const grantType = params.get('grant_type');
    if (!grantType) throw new EntraError(400, 'invalid_request', [900144], "The request body must contain the following parameter: 'grant_type'.");
    if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType)) {
      throw new EntraError(400, 'unsupported_grant_type', [70003], `The app requested an unsupported grant type '${grantType}'.`);
    }
    const client = this.authenticateClient(auth, tenant);
    if (grantType === 'authorization_code') return this.redeemCode(params, client);
    if (grantType === 'refresh_token') return this.redeemRefreshToken(params, client);
    return this.clientCredentials(params, client, tenant);
  }

  private redeemCode(params: URLSearchParams, client: RegisteredClient): Record<string, unknown> {
    const code = required(params, 'code');
    const redirectUri = required(params, 'redirect_uri');
    const record = this.codes.get(code);
    if (!record || record.expiresAt <= this.now()) throw new EntraError(400, 'invalid_grant', [70008], GENERIC_TEXT[70008] ?? '');
    if (record.redeemed) throw new EntraError(400, 'invalid_grant', [54005], GENERIC_TEXT[54005] ?? '');
    if (record.grant.clientId !== client.clientId) throw new EntraError(400, 'invalid_grant', [9002313], 'Invalid request. Request is malformed or invalid: the code was issued to another client.');
    // A redirect_uri differing from the authorize one is the relying party's configuration fault.
    if (redirectUri !== record.redirectUri) throw new EntraError(400, 'invalid_grant', [50011], `The redirect URI '${redirectUri}' specified in the request does not match the redirect URI '${record.redirectUri}' provided when requesting the authorization code.`);
    if (record.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier') ?? '';
      if (s256(verifier) !== record.codeChallenge) throw new EntraError(400, 'invalid_grant', [501481], 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
    }
    record.redeemed = true;
    return this.issueUserTokens(record.grant, record.grant.scope);
  }

  private redeemRefreshToken(params: URLSearchParams, client: RegisteredClient): Record<string, unknown> {
    const token = required(params, 'refresh_token');
    const record = this.refreshTokens.get(token);
    if (!record) throw new EntraError(400, 'invalid_grant', [70008], GENERIC_TEXT[70008] ?? '');
    if (record.revoked) {
      const spec = this.revocation ?? { status: 400, error: 'invalid_grant', errorCodes: [70008] };
      throw new EntraError(spec.status, spec.error, spec.errorCodes, spec.description ?? GENERIC_TEXT[spec.errorCodes[0] ?? 0] ?? 'The refresh token was revoked.');
    }
    if (record.grant.clientId !== client.clientId) throw new EntraError(400, 'invalid_grant', [9002313], 'Invalid request. Request is malformed or invalid: the refresh token was issued to another client.');
    // A narrower scope is fine; anything not consented in the original grant needs consent.
    const requested = params.has('scope') ? splitScope(params.get('scope') ?? '') : record.grant.scope;
    const granted = new Set(record.grant.scope.map((s) => s.toLowerCase()));
    const missing = requested.filter((s) => !OIDC_SCOPES.has(s.toLowerCase()) && !granted.has(s.toLowerCase()));
    if (missing.length > 0) {
      throw new EntraError(400, 'invalid_grant', [65001], `The user or administrator has not consented to use the application with ID '${client.clientId}'. Send an interactive authorization request for this user and resource. (missing: ${missing.join(' ')})`);
    }
    record.redeemed += 1;
    // The old refresh token stays valid (as at Microsoft); a new one is issued every time.
    return this.issueUserTokens(record.grant, requested, true);
  }

  private clientCredentials(params: URLSearchParams, client: RegisteredClient, tenant: string): Record<string, unknown> {
    const scopes = splitScope(required(params, 'scope'));
    const bad = scopes.find((s) => !s.endsWith('/.default'));
    if (bad !== undefined || scopes.length !== 1) {
      throw new EntraError(400, 'invalid_scope', [1002012], `The provided value for scope ${bad ?? scopes.join(' ')} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    const accessToken = this.issueAccessToken(client.clientId, undefined, scopes.join(' '), this.tenantIdFor(tenant));
    // Entra's client-credentials answer has no scope, refresh_token or id_token.
    return this.padded({ token_type: 'Bearer', expires_in: this.accessTokenLifetimeSeconds, ext_expires_in: this.accessTokenLifetimeSeconds, access_token: accessToken });
  }

  private issueUserTokens(grant: Grant, scopes: string[], alwaysRefresh = false): Record<string, unknown> {
    const lower = new Set(scopes.map((s) => s.toLowerCase()));
    // Entra leaves offline_access out of the echoed scope.
    const scope = scopes.filter((s) => s.toLowerCase() !== 'offline_access').join(' ');
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope,
      expires_in: this.accessTokenLifetimeSeconds,
      ext_expires_in: this.accessTokenLifetimeSeconds,
      access_token: this.issueAccessToken(grant.clientId, grant.user.upn, scope, grant.tenantId),
    };
    // A refresh always rotates (the grant has offline_access); id_token follows the scopes asked for now.
    if (alwaysRefresh || lower.has('offline_access')) body.refresh_token = this.issueRefreshToken(grant);
    if (lower.has('openid')) body.id_token = this.idToken(grant);
    return this.padded(body);
  }

  private issueAccessToken(clientId: string, user: string | undefined, scope: string, tenantId: string): string {
    const token = `fake-at.${randomToken(36)}`;
    this.accessTokens.set(token, { clientId, user, scope, tenantId, expiresAt: this.now() + this.accessTokenLifetimeSeconds * 1000, expired: false });
    return token;
  }

  private issueRefreshToken(grant: Grant): string {
    const token = `fake-rt.${randomToken(64)}`;
    this.refreshTokens.set(token, { grant, issuedAt: this.now(), redeemed: 0, revoked: false });
    this.refreshTokenOrder.push(token);
    return token;
  }

  private idToken(grant: Grant): string {
    const iat = Math.floor(this.now() / 1000);
    const header = { typ: 'JWT', alg: 'HS256' };
    const payload: Record<string, unknown> = {
      aud: grant.clientId,
      iss: `${this.baseUrl}/${grant.tenantId}/v2.0`,
      iat,
      nbf: iat,
      exp: iat + 3600,
      name: grant.user.name,
      oid: grant.user.oid,
      preferred_username: grant.user.upn,
      sub: base64url(createHash('sha256').update(`${grant.user.oid}:${grant.clientId}`).digest()).slice(0, 43),
      tid: grant.tenantId,
      ver: '2.0',
    };
    if (grant.nonce !== undefined) payload.nonce = grant.nonce;
    const part = (value: unknown) => base64url(Buffer.from(JSON.stringify(value)));
    const signingInput = `${part(header)}.${part(payload)}`;
    return `${signingInput}.${base64url(createHmac('sha256', this.idTokenSigningKey).update(signingInput).digest())}`;
  }

  private errorBody(err: EntraError, correlationId: string): Record<string, unknown> {
    const traceId = randomUUID();
    const timestamp = entraTimestamp(this.now());
    const prefix = err.codes.length > 0 && !err.text.startsWith('AADSTS') ? `AADSTS${err.codes[0]}: ` : '';
    return {
      error: err.error,
      error_description: `${prefix}${err.text}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: err.codes,
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${this.baseUrl}/error?code=${err.codes[0] ?? ''}`,
    };
  }

  private tenantIdFor(tenant: string): string {
    return GUID.test(tenant) ? tenant.toLowerCase() : this.tenantId;
  }
}

/** Who the request claims to be and how, without judging it (for the request log). */
function peekClient(header: string | undefined, params: URLSearchParams): { clientId: string | undefined; clientAuth: ClientAuthMethod } {
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header ?? '');
  if (basic) return { clientId: formDecode(Buffer.from(basic[1] ?? '', 'base64').toString('utf8').split(':')[0] ?? ''), clientAuth: 'basic' };
  return { clientId: params.get('client_id') ?? undefined, clientAuth: params.has('client_secret') ? 'body' : 'none' };
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (!value) throw new EntraError(400, 'invalid_request', [900144], `The request body must contain the following parameter: '${name}'.`);
  return value;
}

/** Starts a fake Entra ID on 127.0.0.1 (random port). Call close() when done. */
export async function startFakeEntra(options: FakeEntraOptions = {}): Promise<FakeEntra> {
  const entra = new FakeEntra(options);
  await entra.listen();
  return entra;
}

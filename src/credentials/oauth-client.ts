import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import oauthPlugin, { type OAuth2Namespace } from '@fastify/oauth2';
import { effectiveScope, endpointsOf, identityOf, splitScope } from './providers.ts';
import { MAX_TOKEN_RESPONSE_BYTES, TokenEndpointError, classifyTokenError, errorDetails, notATokenResponse, parseTokenResponse, type TokenResponse } from './token-endpoint.ts';
import type { Credential } from './types.ts';

/**
 * The authorization-code mechanics (authorization URL with state and PKCE S256, code exchange)
 * come from @fastify/oauth2. The plugin is built to be registered once per provider at startup,
 * but credentials are created and changed at run time, so each credential gets its own small,
 * never-listening Fastify instance with the plugin registered for that credential's settings,
 * built when first needed and closed when the credential's settings or secret change (or it is
 * deleted). The main server's plugin tree is never touched after start.
 *
 * The plugin keeps state and verifier in cookies; iflow keeps them in the store instead (the state
 * is the only thing the browser brings back, and it must name the credential): the plugin's
 * `reply.setCookie` is handed a recorder, so its generated state and PKCE verifier are captured
 * and stored (verifier encrypted); at the callback the recorded values are handed back the same way.
 */

const STATE_COOKIE = 'state';
const VERIFIER_COOKIE = 'verifier';
const PLUGIN_NAME = 'iflowCredential';
const EXCHANGE_TIMEOUT_MS = 30_000;

interface Entry {
  fingerprint: string;
  client: Promise<{ host: FastifyInstance; oauth: OAuth2Namespace }>;
}

/** What the plugin's generateAuthorizationUri / getAccessTokenFromAuthorizationCodeFlow read from a request. */
interface PluginRequest {
  query: Record<string, string>;
  cookies: Record<string, string>;
  /** Set by iflow when it has taken the state out of the store (checkStateFunction reads it). */
  iflowStateTaken?: string;
}

function splitUrl(url: string): { host: string; path: string } {
  const parsed = new URL(url);
  return { host: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
}

export class CredentialSettingsError extends Error {
  override name = 'CredentialSettingsError';
}

export class AuthorizationCodeClients {
  private readonly entries = new Map<string, Entry>();

  /** The authorization URL for `credential`, with the state and PKCE verifier it was built with. */
  async authorizationUrl(credential: Credential, redirectUri: string): Promise<{ url: string; state: string; verifier: string }> {
    const { oauth } = await this.client(credential, redirectUri);
    const cookies: Record<string, string> = {};
    const recorder = {
      setCookie(name: string, value: string) {
        cookies[name] = value;
        return recorder;
      },
    };
    const request: PluginRequest = { query: {}, cookies: {} };
    const url = await oauth.generateAuthorizationUri(request as unknown as FastifyRequest, recorder as unknown as FastifyReply);
    const state = cookies[STATE_COOKIE];
    const verifier = cookies[VERIFIER_COOKIE];
    if (!state || !verifier) throw new Error('@fastify/oauth2 did not produce a state and a PKCE verifier');
    return { url, state, verifier };
  }

  /** Exchanges an authorization code (with its PKCE verifier); throws TokenEndpointError. */
  async exchange(credential: Credential, redirectUri: string, code: string, state: string, verifier: string): Promise<TokenResponse> {
    const { oauth } = await this.client(credential, redirectUri);
    const request: PluginRequest = { query: { code, state }, cookies: { [STATE_COOKIE]: state, [VERIFIER_COOKIE]: verifier }, iflowStateTaken: state };
    const reply = { clearCookie: () => reply };
    let body: unknown;
    try {
      const token = await oauth.getAccessTokenFromAuthorizationCodeFlow(request as unknown as FastifyRequest, reply as unknown as FastifyReply);
      body = token.token;
    } catch (err) {
      throw exchangeError(err, [credential.secrets.clientSecret, code, verifier]);
    }
    const parsed = parseTokenResponse(body);
    if (!parsed) {
      throw new TokenEndpointError('misconfigured', {
        error: 'invalid_response',
        errorCodes: [],
        description: 'the token endpoint answered without an access_token (is tokenUrl right?)',
        grantType: 'authorization_code',
      });
    }
    return parsed;
  }

  /** Forgets (and closes) the client of `name`: called when the credential changes or goes away. */
  drop(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    this.entries.delete(name);
    void entry.client.then(({ host }) => host.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((entry) => entry.client.then(({ host }) => host.close()).catch(() => undefined)));
  }

  private client(credential: Credential, redirectUri: string): Promise<{ host: FastifyInstance; oauth: OAuth2Namespace }> {
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([identityOf(credential), credential.settings.clientAuthentication ?? 'body', redirectUri, credential.secrets.clientSecret ?? '']))
      .digest('base64url');
    const existing = this.entries.get(credential.name);
    if (existing && existing.fingerprint === fingerprint) return existing.client;
    if (existing) this.drop(credential.name);
    const client = build(credential, redirectUri);
    const entry: Entry = { fingerprint, client };
    this.entries.set(credential.name, entry);
    client.catch(() => {
      if (this.entries.get(credential.name) === entry) this.entries.delete(credential.name);
    });
    return client;
  }
}

async function build(credential: Credential, redirectUri: string): Promise<{ host: FastifyInstance; oauth: OAuth2Namespace }> {
  const { settings, secrets } = credential;
  const endpoints = endpointsOf(settings);
  if (!endpoints.authorizationUrl || !endpoints.tokenUrl || !settings.clientId || secrets.clientSecret === undefined) {
    throw new CredentialSettingsError(`credential "${credential.name}" lacks an authorization URL, token URL, client id or client secret`);
  }
  const authorize = splitUrl(endpoints.authorizationUrl);
  const token = splitUrl(endpoints.tokenUrl);
  const scope = effectiveScope(credential.type, settings);
  const host = Fastify({ logger: false });
  try {
    await host.register(oauthPlugin, {
      name: PLUGIN_NAME,
      scope: splitScope(scope),
      credentials: {
        client: { id: settings.clientId, secret: secrets.clientSecret },
        auth: { authorizeHost: authorize.host, authorizePath: authorize.path, tokenHost: token.host, tokenPath: token.path },
        options: { authorizationMethod: settings.clientAuthentication === 'basic' ? 'header' : 'body' },
        // Wreck's timeout and size limit for the code exchange.
        http: { timeout: EXCHANGE_TIMEOUT_MS, maxBytes: MAX_TOKEN_RESPONSE_BYTES },
      },
      callbackUri: redirectUri,
      tokenRequestParams: scope ? { scope } : {},
      pkce: 'S256',
      userAgent: 'iflow',
      generateStateFunction: () => randomBytes(32).toString('base64url'),
      // iflow takes the state out of the store (once, unexpired) before it calls the exchange.
      checkStateFunction: (request: FastifyRequest) => {
        const r = request as unknown as PluginRequest;
        return r.iflowStateTaken !== undefined && r.iflowStateTaken === r.query.state;
      },
      redirectStateCookieName: STATE_COOKIE,
      verifierCookieName: VERIFIER_COOKIE,
    });
    await host.ready();
  } catch (err) {
    await host.close().catch(() => undefined);
    // simple-oauth2 validates its configuration with Joi, whose messages quote the offending
    // value (which may be the secret): report only which setting was refused.
    const path = (err as { details?: { path?: unknown[] }[] }).details?.[0]?.path?.join('.');
    throw new CredentialSettingsError(`the OAuth 2.0 client for credential "${credential.name}" cannot be built${path ? `: setting ${path} is invalid` : ''}`);
  }
  const oauth = (host as unknown as Record<string, OAuth2Namespace>)[PLUGIN_NAME];
  return { host, oauth };
}

/** simple-oauth2 (Wreck/Boom) errors → TokenEndpointError, keeping Entra's error JSON. */
function exchangeError(err: unknown, secrets: readonly (string | undefined)[]): TokenEndpointError {
  const e = err as { output?: { statusCode?: number }; data?: { payload?: unknown; isResponseError?: boolean; res?: { statusCode?: number; headers?: Record<string, unknown> } } };
  const httpStatus = e.data?.res?.statusCode;
  if (httpStatus === undefined) {
    const timedOut = e.output?.statusCode === 504;
    return new TokenEndpointError('transient', {
      error: timedOut ? 'timeout' : 'network_error',
      errorCodes: [],
      description: timedOut ? `no answer from the token endpoint within ${EXCHANGE_TIMEOUT_MS} ms` : 'could not reach the token endpoint',
      grantType: 'authorization_code',
    });
  }
  let payload = e.data?.payload;
  if (Buffer.isBuffer(payload)) {
    try {
      payload = JSON.parse(payload.toString('utf8'));
    } catch {
      payload = undefined;
    }
  }
  // Past maxBytes: Wreck's own 413 (a server's 413 is a response error), or, as Wreck's reader destroys the response
  // before it reports that, "closed prematurely" on an answer that declared a larger length.
  const declaredBytes = Number(e.data?.res?.headers?.['content-length']);
  const tooLarge = (e.output?.statusCode === 413 && e.data?.isResponseError !== true) || declaredBytes > MAX_TOKEN_RESPONSE_BYTES;
  // A 2xx whose body could not be read whole: sent without a length, a cut at maxBytes and a connection that broke
  // off look alike here (Wreck's 500 "closed prematurely"; its 406 is an answer that is not JSON, read whole).
  const unread = e.data?.isResponseError !== true && e.output?.statusCode === 500 && !('payload' in (e.data ?? {}));
  if (tooLarge) payload = undefined;
  const details = errorDetails(httpStatus, payload, 'authorization_code', secrets);
  if (httpStatus < 300) {
    const description = tooLarge
      ? notATokenResponse(httpStatus, true)
      : unread
        ? `the token endpoint's answer (${httpStatus}) could not be read whole: it broke off, or passed ${MAX_TOKEN_RESPONSE_BYTES} bytes (is tokenUrl right?)`
        : 'the token endpoint did not answer JSON (is tokenUrl right?)';
    return new TokenEndpointError('misconfigured', { ...details, error: 'invalid_response', description });
  }
  const error = payload && typeof payload === 'object' ? (payload as { error?: unknown }).error : undefined;
  return new TokenEndpointError(classifyTokenError(httpStatus, typeof error === 'string' ? error : undefined, details.errorCodes), details);
}

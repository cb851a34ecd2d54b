import { createHash } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.ts';
import { HttpError } from '../errors.ts';
import { DecryptionError, type MasterKey } from '../security/crypto.ts';
import type { CredentialRepository } from '../store/types.ts';
import { CredentialSettingsError, type AuthorizationCodeClients } from './oauth-client.ts';
import { identityOf, redirectUri } from './providers.ts';
import { TokenEndpointError, userFromIdToken, type TokenResponse } from './token-endpoint.ts';
import type { TokenService } from './token-service.ts';
import type { Credential, FailingStatus, LastError } from './types.ts';
import { oauthStateContext, type CredentialVault } from './vault.ts';

/** How long an authorization (state and PKCE verifier) may take: Entra's codes live about as long. */
export const STATE_LIFETIME_MS = 10 * 60_000;

export interface AuthorizationDeps {
  vault: CredentialVault;
  states: CredentialRepository;
  key: MasterKey;
  clients: AuthorizationCodeClients;
  tokens: TokenService;
  config: Pick<Config, 'publicUrl'>;
  log: FastifyBaseLogger;
  now?: () => number;
}

export type CallbackOutcome =
  | { kind: 'authorized'; credential: string; user: string | undefined; expiresAt: string }
  | { kind: 'bad-state'; reason: 'missing' | 'unknown' | 'expired' | 'unreadable' }
  | { kind: 'declined'; credential: string; error: string; description?: string }
  | { kind: 'bad-request'; credential?: string; message: string }
  /** `kept`: the credential had a working grant, which the failed exchange left as it was (status and tokens). */
  | { kind: 'token-error'; credential: string; status: FailingStatus | 'unauthorized'; lastError: LastError; kept: boolean }
  | { kind: 'token-unavailable'; credential: string; lastError: LastError }
  | { kind: 'changed'; credential: string };

/**
 * What an authorization is bound to: the credential's client, endpoints and scope (identityOf) and its creation
 * time (a credential deleted and created again under the same name is another one). Kept with the PKCE verifier
 * (encrypted, after a space: a verifier never holds one, RFC 7636 §4.1), so a code whose authorization was started
 * before the credential changed is not redeemed for the changed one.
 */
export function authorizationBinding(credential: Credential): string {
  return createHash('sha256').update(JSON.stringify([identityOf(credential), credential.createdAt])).digest('base64url').slice(0, 22);
}

/** The browser side of the authorization code flow: start (302 URL) and callback (code → tokens). */
export class Authorization {
  constructor(private readonly deps: AuthorizationDeps) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** The authorization URL to send the admin's browser to; records the state with the encrypted PKCE verifier. */
  async start(name: string): Promise<string> {
    const { vault, states, key, clients, config, log } = this.deps;
    const credential = await vault.get(name);
    if (!credential) throw new HttpError(404, 'NOT_FOUND', `No credential "${name}"`);
    if (credential.type !== 'oauth2-authorization-code') {
      throw new HttpError(400, 'NOT_AUTHORIZABLE', `Credential "${name}" is of type ${credential.type}: only oauth2-authorization-code credentials are authorized in a browser`);
    }
    let authorization: { url: string; state: string; verifier: string };
    try {
      authorization = await clients.authorizationUrl(credential, redirectUri(config.publicUrl));
    } catch (err) {
      if (err instanceof CredentialSettingsError) throw new HttpError(400, 'MISCONFIGURED', err.message);
      throw err;
    }
    await states.putOAuthState({
      state: authorization.state,
      credentialName: name,
      codeVerifier: key.encrypt(`${authorization.verifier} ${authorizationBinding(credential)}`, oauthStateContext(authorization.state)),
      expiresAt: new Date(this.now() + STATE_LIFETIME_MS).toISOString(),
    });
    log.info({ credential: name, outcome: 'authorization-started' }, 'credential authorization started');
    return authorization.url;
  }

  /** Handles the browser coming back with `code` and `state` (or `error`). */
  async callback(query: Record<string, string | undefined>): Promise<CallbackOutcome> {
    const { vault, states, key, clients, config, log, tokens } = this.deps;
    const { state } = query;
    if (!state) return { kind: 'bad-state', reason: 'missing' };
    // Taken (removed) at once: whatever happens next, a state works once.
    const record = await states.takeOAuthState(state);
    if (!record) return { kind: 'bad-state', reason: 'unknown' };
    if (!(Date.parse(record.expiresAt) > this.now())) return { kind: 'bad-state', reason: 'expired' };
    const name = record.credentialName;

    if (query.error !== undefined) {
      log.info({ credential: name, outcome: 'authorization-declined', error: query.error.slice(0, 100) }, 'authorization server did not authorize the credential');
      return { kind: 'declined', credential: name, error: query.error, description: query.error_description };
    }
    if (!query.code) return { kind: 'bad-request', credential: name, message: 'The authorization server sent neither a code nor an error.' };

    let verifier: string;
    let binding: string | undefined;
    try {
      // States stored before bindings were kept hold the verifier alone.
      [verifier = '', binding] = key.decrypt(record.codeVerifier, oauthStateContext(state)).split(' ');
    } catch (err) {
      if (err instanceof DecryptionError) return { kind: 'bad-state', reason: 'unreadable' };
      throw err;
    }
    const credential = await vault.get(name);
    if (!credential || credential.type !== 'oauth2-authorization-code') {
      return { kind: 'bad-request', credential: name, message: `Credential "${name}" no longer exists (or is no longer an authorization-code credential).` };
    }
    if (binding !== undefined && binding !== authorizationBinding(credential)) {
      // Its client, endpoints or scope changed (or it was deleted and created again) since this authorization
      // started: the code belongs to the old settings, and is not redeemed.
      log.warn({ credential: name, outcome: 'discarded' }, 'credential changed since its authorization started; code not redeemed');
      return { kind: 'changed', credential: name };
    }

    const redirect = redirectUri(config.publicUrl);
    let response: TokenResponse;
    try {
      response = await clients.exchange(credential, redirect, query.code, state, verifier);
    } catch (err) {
      if (err instanceof CredentialSettingsError) return { kind: 'bad-request', credential: name, message: err.message };
      if (!(err instanceof TokenEndpointError)) throw err;
      const lastError = err.toLastError(new Date(this.now()));
      const logFields = { credential: name, grantType: 'authorization_code', error: lastError.error, errorCodes: lastError.errorCodes, httpStatus: lastError.httpStatus, traceId: lastError.traceId, correlationId: lastError.correlationId };
      if (err.classification === 'transient') {
        log.warn({ ...logFields, outcome: 'transient-failure', status: credential.state.status ?? 'unauthorized' }, 'authorization code exchange failed transiently');
        return { kind: 'token-unavailable', credential: name, lastError };
      }
      const status = err.classification;
      const identity = identityOf(credential);
      // A code that fails for itself (replayed, expired: invalid_grant) says nothing about a grant the credential
      // already holds: one that works stays as it is, and messages go on using it. Any other failure (a wrong
      // secret, consent withdrawn, a blocked user) will fail that grant's next refresh too: it is recorded. Nor does
      // it end a grant a credential never had: one still unauthorized stays so, with the error recorded.
      let kept = false;
      let recorded: FailingStatus | 'unauthorized' = status;
      await vault.repository.withLock(name, async () => {
        await vault.mutate(name, (latest) => {
          if (identityOf(latest) !== identity) return undefined;
          kept = status === 'reauthorization-required' && latest.state.status === 'authorized' && latest.secrets.refreshToken !== undefined;
          if (kept) return undefined;
          const unauthorized = (latest.state.status ?? 'unauthorized') === 'unauthorized';
          recorded = status === 'reauthorization-required' && unauthorized ? 'unauthorized' : status;
          return { ...latest, state: { ...latest.state, status: recorded, lastError } };
        });
        tokens.forget(name);
      });
      log.warn({ ...logFields, outcome: 'failed', status: kept ? 'authorized' : recorded, kept }, 'authorization code exchange failed');
      return { kind: 'token-error', credential: name, status: recorded, lastError, kept };
    }

    const now = this.now();
    const expiresAt = new Date(now + response.expiresIn * 1000).toISOString();
    const user = userFromIdToken(response.idToken) ?? credential.settings.user;
    const identity = identityOf(credential);
    const authorized = (latest: Credential): Credential => ({
      ...latest,
      secrets: { ...latest.secrets, accessToken: response.accessToken, refreshToken: response.refreshToken, tokenType: response.tokenType },
      state: {
        status: 'authorized',
        user,
        expiresAt,
        lastRefreshAt: new Date(now).toISOString(),
        authorizedAt: new Date(now).toISOString(),
        grantedScope: response.scope,
      },
    });
    // Written under the credential's refresh lock: a refresh of the previous grant in progress
    // (this process or another instance) finishes first, and one that starts later reads these
    // tokens. The lock is taken only after the code exchange, and nothing inside it waits for a
    // token flight (a flight may itself be waiting for this lock), so the two cannot deadlock.
    const result = await vault.repository.withLock(name, async () => {
      const written = await vault.mutate(name, (latest) => (identityOf(latest) === identity ? authorized(latest) : undefined));
      tokens.forget(name);
      return written;
    });
    if (!result?.written) {
      log.warn({ credential: name, outcome: 'discarded' }, 'credential changed during authorization; tokens discarded');
      return { kind: 'changed', credential: name };
    }
    log.info({ credential: name, grantType: 'authorization_code', outcome: 'authorized', status: 'authorized', expiresAt, user, refreshable: response.refreshToken !== undefined }, 'credential authorized');
    return { kind: 'authorized', credential: name, user, expiresAt };
  }
}

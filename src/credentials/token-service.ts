import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { AccessToken, SecurityMaterial, UserCredential } from '../runtime/context.ts';
import { effectiveScope, endpointsOf, identityOf, providerOf } from './providers.ts';
import { THROTTLED_WAIT_MS, TokenEndpointError, requestToken, userFromIdToken, type TokenClient, type TokenResponse } from './token-endpoint.ts';
import { CredentialError, authorizePath, credentialPath, failingStatusError, isFailingStatus, type Credential, type FailingStatus, type LastError } from './types.ts';
import type { CredentialVault } from './vault.ts';
import { within } from '../deadline.ts';

export interface TokenServiceOptions {
  vault: CredentialVault;
  log: FastifyBaseLogger;
  /** How long a refresh token may rest before the keep-alive exercises it (ms); 0 turns keep-alive off. */
  keepAliveMs: number;
  /** Clock (epoch ms); tests may move it. */
  now?: () => number;
  /** Waits before the 2nd, 3rd… attempt of a transiently failing token request (default 500 ms, 2 s). */
  retryDelaysMs?: number[];
  /** Per token request (default 20 s). */
  requestTimeoutMs?: number;
  /** How long one getAccessToken() call waits at most, across tries and the waits between them (default MESSAGE_TOKEN_DEADLINE_MS). */
  messageDeadlineMs?: number;
}

export interface KeepAliveReport {
  refreshed: string[];
  skipped: string[];
  failed: { name: string; code: string }[];
}

interface CachedToken {
  token: AccessToken;
  obtainedAtMs: number;
  expiresAtMs: number;
}

const FIVE_MINUTES = 5 * 60_000;
/** After a transient failure of a refresh ahead of expiry, the still valid token is used this long before the next try. */
const AHEAD_BACKOFF_MS = 30_000;
/**
 * After a receiver refused a token renewed for its 401, its 401s renew no token of that credential for this long:
 * without it a receiver that refuses every token costs one token request per message, which Entra may throttle.
 */
export const RENEWAL_PAUSE_MS = 60_000;
/**
 * A message waits at most this long for a token, across tries and the waits between them (a refresh's own budget,
 * three tries of up to 20 s each, is longer). Well inside a script step's default timeout (30 s), so the caller gets
 * 503 CREDENTIAL_TOKEN_UNAVAILABLE ("send again") rather than a 500 SCRIPT_TIMEOUT; the refresh it waited for goes on,
 * still one per credential, for the messages after it.
 */
export const MESSAGE_TOKEN_DEADLINE_MS = 20_000;
/** What `within` gives when the deadline came first. */
const LATE = Symbol('late');
/** Retry-After longer than this is not waited for inside a message: the message fails at once (503 with Retry-After). */
const MAX_RETRY_AFTER_MS = 10_000;
/**
 * A token endpoint's Retry-After holds back the credential's token requests (messages and keep-alive alike) this long
 * at most: Entra throttles clients that keep asking (AADSTS50196), but an absurd value must not stall a credential for days.
 */
export const MAX_NOT_BEFORE_MS = 5 * 60_000;
/** A basic credential (user and password) is read from the store again after this long, so another instance's update is seen. */
const BASIC_CACHE_MS = 60_000;

/**
 * A failure that is not the credential's (the store unreachable, its connection cut while a lock was awaited) as a
 * CredentialError: 503, send again, instead of the store's own words as a 500.
 */
function storeTrouble(name: string, err: unknown): unknown {
  if (err instanceof CredentialError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new CredentialError(name, 'CREDENTIAL_TOKEN_UNAVAILABLE', `Credential "${name}" could not be read from the store (${reason.slice(0, 200)}): send the message again`);
}

/** Refresh this long before expiry: 5 minutes, or a tenth of the token's lifetime when that is shorter. */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(FIVE_MINUTES, Math.max(0, lifetimeMs) / 10);
}

type RefreshReason = { kind: 'message'; rejectedToken?: string } | { kind: 'keep-alive'; olderThanMs: number };

/**
 * Do both hold the same grant? A re-authorization replaces the refresh token and `authorizedAt`;
 * tokens obtained with the older grant must then not be written over the newer one.
 */
function sameGrant(a: Credential, b: Credential): boolean {
  return a.secrets.refreshToken === b.secrets.refreshToken && a.state.authorizedAt === b.state.authorizedAt;
}

/**
 * The token service behind `app.securityMaterial`: hands out access tokens, refreshing them ahead
 * of expiry, one refresh per credential at a time (in-process single flight, plus the store's
 * per-credential lock with a re-read after taking it); a rotated refresh token is written (compare
 * and swap on the record version) before the new access token is returned; token-endpoint errors
 * set the credential's status, in which every request then fails at once with a CredentialError.
 * A caller waits at most MESSAGE_TOKEN_DEADLINE_MS; a token endpoint's Retry-After (MAX_NOT_BEFORE_MS at
 * most) holds back every token request of the credential, and callers needing a new token meanwhile fail at once.
 */
export class TokenService implements SecurityMaterial {
  private readonly cache = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<AccessToken>>();
  /** Per credential: no refresh ahead of expiry before this time (epoch ms), after a transient failure. */
  private readonly aheadBackoffUntil = new Map<string, number>();
  /** Per credential: no token request at all before this time (epoch ms): the token endpoint's Retry-After, at most MAX_NOT_BEFORE_MS. */
  private readonly notBefore = new Map<string, number>();
  /** Per credential, per receiver host: until when (epoch ms) its 401s renew no token, since a renewed token was refused too. */
  private readonly renewalPausedUntil = new Map<string, Map<string, number>>();
  /** When each credential's client secret expiry was last warned about (once a day is enough). */
  private readonly secretWarnedAt = new Map<string, number>();
  /** Basic credentials (user and password), read from the store at most every BASIC_CACHE_MS. */
  private readonly basicCache = new Map<string, { credential: UserCredential; readAtMs: number }>();
  /** Bumped by forget() and changedInStore(): a read that started before must not fill a cache with what it read. */
  private generation = 0;
  /** Flights and keep-alive runs in progress: stop() waits for them (they write to the store). */
  private readonly work = new Set<Promise<unknown>>();
  /** Aborted by stop(): ends the waits between retries of a token request. */
  private readonly stopping = new AbortController();
  private stopped = false;
  /** The next keep-alive check (startKeepAlive()); stop() clears it. */
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private readonly vault: CredentialVault;
  private readonly log: FastifyBaseLogger;
  private readonly now: () => number;
  private readonly retryDelaysMs: number[];
  private readonly requestTimeoutMs: number;
  private readonly messageDeadlineMs: number;
  readonly keepAliveMs: number;

  constructor(options: TokenServiceOptions) {
    this.vault = options.vault;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.retryDelaysMs = options.retryDelaysMs ?? [500, 2000];
    this.requestTimeoutMs = options.requestTimeoutMs ?? 20_000;
    this.messageDeadlineMs = options.messageDeadlineMs ?? MESSAGE_TOKEN_DEADLINE_MS;
    this.keepAliveMs = options.keepAliveMs;
  }

  /**
   * The server is closing: keep-alive stops, waits between retries end, no new refresh starts
   * (a request then fails with CREDENTIAL_TOKEN_UNAVAILABLE unless a fresh token is cached).
   * Resolves once the refreshes and keep-alive runs in progress have settled; a token request
   * already sent may complete (bounded by its timeout), so a rotated refresh token is written
   * before the store closes.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.keepAliveTimer);
    this.stopping.abort();
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  /**
   * Background keep-alive: every refresh token that rested for keepAliveMs is exercised. The check
   * runs more often than that (a quarter of it, between 1 s and 1 h) so restarts never starve it;
   * the first one within a minute. A run in progress is work that stop() waits for.
   */
  startKeepAlive(): void {
    if (this.keepAliveMs <= 0) return;
    const every = Math.min(Math.max(Math.floor(this.keepAliveMs / 4), 1000), 3_600_000);
    const schedule = (delay: number) => {
      if (this.stopped) return;
      this.keepAliveTimer = setTimeout(() => {
        this.keepAliveTimer = undefined;
        void this.track(
          this.runKeepAlive()
            .then((report) => {
              if (report.refreshed.length + report.failed.length > 0) this.log.info({ ...report }, 'credential keep-alive done');
            })
            .catch((err: unknown) => this.log.error({ err }, 'credential keep-alive failed'))
            .finally(() => schedule(every)),
        );
      }, delay);
      this.keepAliveTimer.unref();
    };
    schedule(Math.min(every, 60_000));
  }

  /** Drops what is cached about `name` (after an admin changed, authorized or deleted it). */
  forget(name: string): void {
    this.changedInStore(name);
    this.aheadBackoffUntil.delete(name);
    this.notBefore.delete(name);
    // An admin changed or authorized it again (new scopes, say): the next 401 may renew at once.
    this.renewalPausedUntil.delete(name);
  }

  renewedTokenRefused(name: string, receiver: string): void {
    const now = this.now();
    if (this.renewalPaused(name, receiver)) return;
    let paused = this.renewalPausedUntil.get(name);
    if (!paused) this.renewalPausedUntil.set(name, (paused = new Map()));
    // Ended pauses go as a new one starts: receivers' hosts may come from messages, and must not pile up.
    for (const [host, until] of paused) if (until <= now) paused.delete(host);
    paused.set(receiver, now + RENEWAL_PAUSE_MS);
    this.log.warn(
      {
        credential: name,
        receiver,
        pausedUntil: new Date(now + RENEWAL_PAUSE_MS).toISOString(),
        hint: "the receiver does not accept this credential's tokens: check the token's audience and scope against what the receiver expects",
      },
      "a receiver refused a renewed token too; its 401s renew none of this credential's tokens for a while",
    );
  }

  /** Is renewing `name`'s token for `receiver`'s 401s paused (this instance's memory; each instance has its own)? */
  private renewalPaused(name: string, receiver: string | undefined): boolean {
    if (receiver === undefined) return false;
    const until = this.renewalPausedUntil.get(name)?.get(receiver);
    return until !== undefined && until > this.now();
  }

  /**
   * The store says `name` (without a name: any credential) was changed, possibly by another instance: drop the
   * cached token and basic credential, so the next use reads the stored record. Its refresh backoff stays: this
   * instance's own refreshes are announced too, and must not undo it.
   */
  changedInStore(name?: string): void {
    this.generation++;
    if (name === undefined) {
      this.cache.clear();
      this.basicCache.clear();
      return;
    }
    this.cache.delete(name);
    this.basicCache.delete(name);
  }

  /** Counts `promise` as work in progress until it settles. */
  private track<T>(promise: Promise<T>): Promise<T> {
    this.work.add(promise);
    const done = () => this.work.delete(promise);
    promise.then(done, done);
    return promise;
  }

  private shuttingDown(name: string): CredentialError {
    return new CredentialError(name, 'CREDENTIAL_TOKEN_UNAVAILABLE', `Credential "${name}": iflow is shutting down and starts no token refresh: send the message again once it is back`);
  }

  async getAccessToken(name: string, options: { rejectedToken?: string; receiver?: string } = {}): Promise<AccessToken> {
    // While renewing is paused for the receiver, a rejected token is handed out again as if not rejected: its 401 stands.
    const rejected = this.renewalPaused(name, options.receiver) ? undefined : options.rejectedToken;
    const cached = this.cache.get(name);
    if (cached && this.isFresh(cached.obtainedAtMs, cached.expiresAtMs) && cached.token.accessToken !== rejected) return { ...cached.token };
    // The flight this message waits for is not ended by the deadline: it is tracked work, and its token serves the next messages.
    let token: AccessToken | typeof LATE;
    try {
      token = await within(this.fetch(name, rejected), this.messageDeadlineMs, LATE);
    } catch (err) {
      throw storeTrouble(name, err);
    }
    if (token === LATE) throw this.deadlinePassed(name);
    return token;
  }

  /** A token for a message, from the credential's flight (joined or started). */
  private async fetch(name: string, rejected: string | undefined): Promise<AccessToken> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.singleFlight(name, { kind: 'message', rejectedToken: rejected });
      // A flight started without knowing of the rejection may hand back the rejected token: go
      // again (its slot is free by now), once or twice.
      if (rejected === undefined || token.accessToken !== rejected || attempt >= 2) return { ...token };
    }
  }

  private deadlinePassed(name: string): CredentialError {
    return new CredentialError(
      name,
      'CREDENTIAL_TOKEN_UNAVAILABLE',
      `Credential "${name}": no token within ${this.messageDeadlineMs} ms (the token endpoint, or the store, did not answer in time); this is usually temporary (the refresh goes on): send the message again shortly`,
    );
  }

  async getUserCredential(name: string): Promise<UserCredential> {
    const cached = this.basicCache.get(name);
    if (cached && this.now() - cached.readAtMs < BASIC_CACHE_MS) return { ...cached.credential };
    const generation = this.generation;
    const credential = await this.load(name).catch((err: unknown) => {
      throw storeTrouble(name, err);
    });
    if (credential.type !== 'basic') {
      throw new CredentialError(name, 'CREDENTIAL_WRONG_TYPE', `Credential "${name}" is of type ${credential.type}, not basic: use it for OAuth 2.0 tokens, or name a basic credential`, { statusCode: 500 });
    }
    const user: UserCredential = { user: credential.settings.user ?? '', password: credential.secrets.password ?? '' };
    if (generation === this.generation) this.basicCache.set(name, { credential: user, readAtMs: this.now() });
    return { ...user };
  }

  /**
   * Exercises the refresh token of every authorized authorization-code credential that was not
   * refreshed for `olderThanMs` (default: the keep-alive period), so inactivity (AADSTS700082)
   * never ends a grant. Failures set the status as any refresh does; transient ones are logged.
   */
  runKeepAlive(options: { olderThanMs?: number } = {}): Promise<KeepAliveReport> {
    return this.track(this.keepAlive(options.olderThanMs ?? this.keepAliveMs));
  }

  private async keepAlive(olderThanMs: number): Promise<KeepAliveReport> {
    const report: KeepAliveReport = { refreshed: [], skipped: [], failed: [] };
    if (this.stopped) return report;
    let names: string[];
    try {
      names = (await this.vault.repository.list()).filter((r) => r.type === 'oauth2-authorization-code').map((r) => r.name);
    } catch (err) {
      this.log.error({ err }, 'credential keep-alive could not list credentials');
      return report;
    }
    for (const name of names) {
      if (this.stopped) break;
      try {
        const credential = await this.vault.get(name);
        if (!credential) continue;
        this.warnAboutSecretExpiry(credential);
        // Held back by the token endpoint's Retry-After: the next check tries again.
        if (credential.state.status !== 'authorized' || !credential.secrets.refreshToken || !this.restedLongEnough(credential, olderThanMs) || this.heldBackMs(name) > 0) {
          report.skipped.push(name);
          continue;
        }
        // Wait for a flight in progress (its outcome may make this one unnecessary).
        await this.inflight.get(name)?.catch(() => undefined);
        if (this.stopped) break;
        await this.singleFlight(name, { kind: 'keep-alive', olderThanMs });
        report.refreshed.push(name);
      } catch (err) {
        const code = err instanceof CredentialError ? err.code : 'ERROR';
        if (!(err instanceof CredentialError)) this.log.error({ err, credential: name }, 'credential keep-alive failed');
        report.failed.push({ name, code });
      }
    }
    return report;
  }

  private warnAboutSecretExpiry(credential: Credential): void {
    const expires = credential.settings.clientSecretExpiresAt ? Date.parse(credential.settings.clientSecretExpiresAt) : NaN;
    if (Number.isNaN(expires)) return;
    const days = Math.floor((expires - this.now()) / 86_400_000);
    if (this.now() - (this.secretWarnedAt.get(credential.name) ?? -Infinity) < 86_400_000) return;
    if (days < 30) {
      this.secretWarnedAt.set(credential.name, this.now());
      this.log.warn(
        { credential: credential.name, clientSecretExpiresAt: credential.settings.clientSecretExpiresAt, days },
        days < 0 ? 'client secret of credential has expired: create a new one and update the credential' : 'client secret of credential expires soon: create a new one and update the credential',
      );
    }
  }

  private restedLongEnough(credential: Credential, olderThanMs: number): boolean {
    const last = credential.state.lastRefreshAt ? Date.parse(credential.state.lastRefreshAt) : 0;
    return this.now() - (Number.isNaN(last) ? 0 : last) >= olderThanMs;
  }

  private isFresh(obtainedAtMs: number, expiresAtMs: number): boolean {
    return this.now() < expiresAtMs - refreshMarginMs(expiresAtMs - obtainedAtMs);
  }

  private singleFlight(name: string, reason: RefreshReason): Promise<AccessToken> {
    const existing = this.inflight.get(name);
    if (existing) return existing;
    if (this.stopped) return Promise.reject(this.shuttingDown(name));
    const flight = this.obtain(name, reason).finally(() => {
      if (this.inflight.get(name) === flight) this.inflight.delete(name);
    });
    this.inflight.set(name, flight);
    return this.track(flight);
  }

  private async load(name: string): Promise<Credential> {
    const credential = await this.vault.get(name);
    if (!credential) {
      throw new CredentialError(name, 'CREDENTIAL_NOT_FOUND', `Credential "${name}" does not exist: an admin creates it (POST /api/v1/credentials), or the flow names another one`, {
        statusCode: 500,
      });
    }
    return credential;
  }

  /** The stored access token, when there is one. */
  private stored(credential: Credential): CachedToken | undefined {
    const { secrets, state } = credential;
    if (!secrets.accessToken || !state.expiresAt) return undefined;
    const expiresAtMs = Date.parse(state.expiresAt);
    const obtainedAtMs = state.lastRefreshAt ? Date.parse(state.lastRefreshAt) : expiresAtMs - 3_600_000;
    if (Number.isNaN(expiresAtMs)) return undefined;
    return {
      token: { accessToken: secrets.accessToken, tokenType: secrets.tokenType ?? 'Bearer', user: state.user, expiresAt: state.expiresAt },
      obtainedAtMs: Number.isNaN(obtainedAtMs) ? expiresAtMs - 3_600_000 : obtainedAtMs,
      expiresAtMs,
    };
  }

  /** Can `credential`'s stored token be handed out for `reason` without asking the token endpoint? */
  private usable(credential: Credential, reason: RefreshReason): CachedToken | undefined {
    const stored = this.stored(credential);
    if (!stored) return undefined;
    if (reason.kind === 'message' && stored.token.accessToken === reason.rejectedToken) return undefined;
    if (reason.kind === 'keep-alive' && this.restedLongEnough(credential, reason.olderThanMs)) return undefined;
    if (this.isFresh(stored.obtainedAtMs, stored.expiresAtMs)) return stored;
    // Due for a refresh ahead of expiry, but the last try failed transiently a moment ago: the
    // token is still valid, so use it rather than asking a struggling server again at once.
    if (reason.kind === 'message' && this.stillValid(stored) && (this.now() < (this.aheadBackoffUntil.get(credential.name) ?? 0) || this.heldBackMs(credential.name) > 0)) return stored;
    return undefined;
  }

  /** Not expired yet (it may be inside the refresh margin). */
  private stillValid(token: CachedToken): boolean {
    return this.now() < token.expiresAtMs - 1000;
  }

  private checkUsableType(credential: Credential): void {
    if (credential.type === 'basic') {
      throw new CredentialError(credential.name, 'CREDENTIAL_WRONG_TYPE', `Credential "${credential.name}" is of type basic: it holds a user and password, not OAuth 2.0 tokens`, { statusCode: 500 });
    }
    if (isFailingStatus(credential.state.status)) throw this.failing(credential, credential.state.status, credential.state.lastError);
  }

  private failing(credential: Credential, status: FailingStatus, lastError: LastError | undefined): CredentialError {
    return failingStatusError(credential.name, status, lastError, credential.type);
  }

  /** The stored credential, and its token when that is still good for `reason` (then cached too). */
  private async loadUsable(name: string, reason: RefreshReason): Promise<{ credential: Credential; token?: AccessToken }> {
    const generation = this.generation;
    const credential = await this.load(name);
    this.checkUsableType(credential);
    const usable = this.usable(credential, reason);
    if (!usable) return { credential };
    // Not cached when the credential was forgotten or changed in the store meanwhile: this read may predate that.
    if (generation === this.generation) this.cache.set(name, usable);
    return { credential, token: usable.token };
  }

  private async obtain(name: string, reason: RefreshReason): Promise<AccessToken> {
    const { credential, token } = await this.loadUsable(name, reason);
    if (token) return token;
    const heldBack = this.heldBackMs(name);
    if (heldBack > 0) {
      const seconds = Math.ceil(heldBack / 1000);
      throw new CredentialError(
        name,
        'CREDENTIAL_TOKEN_UNAVAILABLE',
        `Credential "${name}": the token endpoint asked for no token requests for a while (Retry-After); this is temporary: send the message again in ${seconds} s`,
        { credentialStatus: credential.state.status, lastError: credential.state.lastError, retryAfterSeconds: seconds },
      );
    }
    return this.vault.repository.withLock(name, () => this.refreshLocked(name, reason));
  }

  /** How long `name`'s token requests are still held back by a token endpoint's Retry-After (ms; 0 when not). */
  private heldBackMs(name: string): number {
    const until = this.notBefore.get(name);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left <= 0) this.notBefore.delete(name);
    return Math.max(0, left);
  }

  private async refreshLocked(name: string, reason: RefreshReason): Promise<AccessToken> {
    // Another refresher (this process or another instance) may have finished while we waited.
    const { credential, token: stillGood } = await this.loadUsable(name, reason);
    if (stillGood) return stillGood;
    // Closing while this flight waited for the lock: ask for no new tokens the store may not take.
    if (this.stopped) throw this.shuttingDown(name);

    const grant = this.grantFor(credential);
    if (!grant) {
      return this.onFailure(
        credential,
        reason,
        new TokenEndpointError('reauthorization-required', {
          error: 'refresh_token_missing',
          errorCodes: [],
          description: `the authorization server issued no refresh token${providerOf(credential.settings) === 'microsoft365' ? '' : ' (add offline_access or its equivalent to the scope)'}, and the access token expired`,
          grantType: 'refresh_token',
        }),
        'refresh_token',
      );
    }
    const started = this.now();
    // Refreshing ahead of expiry with a token that still works: one attempt, no waiting (the
    // message goes on with the current token if it fails); otherwise retry with backoff.
    const current = this.stored(credential);
    const ahead = reason.kind === 'message' && current !== undefined && current.token.accessToken !== reason.rejectedToken && this.stillValid(current);
    let response: TokenResponse;
    let attempts = 0;
    try {
      ({ response, attempts } = await this.requestWithRetries(this.clientFor(credential), grant, ahead ? 0 : this.retryDelaysMs.length));
    } catch (err) {
      if (!(err instanceof TokenEndpointError)) throw err;
      return this.onFailure(credential, reason, err, grant.grant_type);
    }

    const now = this.now();
    const expiresAt = new Date(now + response.expiresIn * 1000).toISOString();
    const { result, superseded } = await this.writeToSameGrant(name, credential, (latest) => ({
      ...latest,
      secrets: {
        ...latest.secrets,
        accessToken: response.accessToken,
        tokenType: response.tokenType,
        // A rotated refresh token replaces the old one; a server that does not rotate keeps it.
        refreshToken: response.refreshToken ?? latest.secrets.refreshToken,
      },
      state: {
        ...latest.state,
        status: 'authorized',
        expiresAt,
        lastRefreshAt: new Date(now).toISOString(),
        grantedScope: response.scope ?? latest.state.grantedScope,
        user: userFromIdToken(response.idToken) ?? latest.state.user,
        lastError: undefined,
      },
    }));
    if (result && !result.written && superseded) return this.superseded(result.credential, reason);
    if (!result?.written) {
      this.log.warn({ credential: name, outcome: 'discarded' }, 'credential changed during token refresh; new tokens discarded');
      throw new CredentialError(name, 'CREDENTIAL_TOKEN_UNAVAILABLE', `Credential "${name}" was changed or deleted while its token was refreshed: send the message again`);
    }
    const token = this.stored(result.credential)!;
    this.cache.set(name, token);
    this.aheadBackoffUntil.delete(name);
    this.notBefore.delete(name);
    this.log.info(
      {
        credential: name,
        grantType: grant.grant_type,
        reason: reason.kind,
        outcome: 'refreshed',
        status: 'authorized',
        expiresAt,
        rotated: response.refreshToken !== undefined && response.refreshToken !== credential.secrets.refreshToken,
        attempts,
        durationMs: now - started,
      },
      'credential token refreshed',
    );
    return token.token;
  }

  private async onFailure(credential: Credential, reason: RefreshReason, err: TokenEndpointError, grantType: string): Promise<AccessToken> {
    const { name } = credential;
    const lastError = err.toLastError(new Date(this.now()));
    if (err.classification === 'transient') {
      const stored = this.stored(credential);
      const stillValid = stored !== undefined && this.stillValid(stored) && !(reason.kind === 'message' && stored.token.accessToken === reason.rejectedToken);
      // The server said when to ask again: nobody asks before (kept whether or not the current token is still valid).
      const holdBackMs = Math.min(err.retryAfterMs ?? (err.throttled ? THROTTLED_WAIT_MS : 0), MAX_NOT_BEFORE_MS);
      if (holdBackMs > 0) this.notBefore.set(name, this.now() + holdBackMs);
      if (stillValid) this.aheadBackoffUntil.set(name, this.now() + Math.max(AHEAD_BACKOFF_MS, holdBackMs));
      const retryAfterSeconds = holdBackMs > 0 ? Math.ceil(holdBackMs / 1000) : undefined;
      this.log.warn(
        { credential: name, grantType, reason: reason.kind, outcome: 'transient-failure', status: credential.state.status, error: lastError.error, errorCodes: lastError.errorCodes, httpStatus: lastError.httpStatus, traceId: lastError.traceId, correlationId: lastError.correlationId, expiresAt: credential.state.expiresAt, notBefore: holdBackMs > 0 ? new Date(this.now() + holdBackMs).toISOString() : undefined },
        stillValid ? 'credential token refresh failed transiently; the current token is still valid and used' : 'credential token refresh failed transiently',
      );
      // The status stays (it is temporary), but what went wrong is shown in reads until a refresh succeeds. A store
      // that cannot take it changes nothing here: the line above says it all the same.
      await this.writeToSameGrant(name, credential, (latest) => ({ ...latest, state: { ...latest.state, lastError } })).catch(() => undefined);
      if (stillValid && reason.kind === 'message') return stored.token;
      throw new CredentialError(
        name,
        'CREDENTIAL_TOKEN_UNAVAILABLE',
        `Credential "${name}": the token endpoint did not give a token (${lastError.error}${lastError.httpStatus ? `, HTTP ${lastError.httpStatus}` : ''}); this is usually temporary: send the message again ${retryAfterSeconds === undefined ? 'later' : `in ${retryAfterSeconds} s`}`,
        { credentialStatus: credential.state.status, lastError, retryAfterSeconds },
      );
    }
    const status = err.classification;
    // A re-authorization meanwhile wins over this failure of the grant it replaced.
    const { result, superseded } = await this.writeToSameGrant(name, credential, (latest) => ({ ...latest, state: { ...latest.state, status, lastError } }));
    if (result && !result.written && superseded) return this.superseded(result.credential, reason, lastError.error);
    this.cache.delete(name);
    this.log.warn(
      { credential: name, grantType, reason: reason.kind, outcome: 'failed', status, error: lastError.error, errorCodes: lastError.errorCodes, httpStatus: lastError.httpStatus, traceId: lastError.traceId, correlationId: lastError.correlationId },
      'credential token refresh failed; credential needs an admin',
    );
    throw this.failing(credential, status, lastError);
  }

  /**
   * Applies `change` to the newest record unless the grant it concerns is gone: the admin changed
   * the client or scope (the result belongs to the old settings), or authorized again, perhaps as
   * another user (the newer grant wins; writing would bring the old one back: `superseded`).
   */
  private async writeToSameGrant(name: string, credential: Credential, change: (latest: Credential) => Credential) {
    const identity = identityOf(credential);
    let superseded = false;
    const result = await this.vault.mutate(name, (latest) => {
      superseded = false;
      if (identityOf(latest) !== identity) return undefined;
      superseded = !sameGrant(latest, credential);
      return superseded ? undefined : change(latest);
    });
    return { result, superseded };
  }

  /**
   * The credential was authorized again while its older grant was being refreshed: what the
   * refresh got (or the error it met) is dropped, and the newer grant's token is handed out.
   */
  private superseded(latest: Credential, reason: RefreshReason, error?: string): AccessToken {
    const { name } = latest;
    this.log.warn({ credential: name, reason: reason.kind, outcome: 'superseded', error }, 'credential was authorized again during token refresh; the refresh result is discarded');
    this.checkUsableType(latest);
    let usable = this.usable(latest, reason);
    const stored = this.stored(latest);
    // A message can go on with the new grant's token while it is valid, even inside the refresh margin.
    if (!usable && reason.kind === 'message' && stored && this.stillValid(stored) && stored.token.accessToken !== reason.rejectedToken) usable = stored;
    if (!usable) {
      throw new CredentialError(name, 'CREDENTIAL_TOKEN_UNAVAILABLE', `Credential "${name}" was authorized again while its token was refreshed: send the message again`);
    }
    this.cache.set(name, usable);
    this.aheadBackoffUntil.delete(name);
    return usable.token;
  }

  /** The grant to ask for; undefined when an authorization-code credential has no refresh token left to use. */
  private grantFor(credential: Credential): Record<string, string> | undefined {
    const { name, type, settings, secrets, state } = credential;
    const scope = effectiveScope(type, settings);
    if (type === 'oauth2-client-credentials') return scope ? { grant_type: 'client_credentials', scope } : { grant_type: 'client_credentials' };
    if (!secrets.refreshToken) {
      if (state.status !== 'authorized' || !secrets.accessToken) {
        throw new CredentialError(name, 'CREDENTIAL_NOT_AUTHORIZED', `Credential "${name}" has not been authorized yet: an admin opens ${authorizePath(name)}`, {
          credentialStatus: state.status ?? 'unauthorized',
        });
      }
      // Authorized without a refresh token (the server issued none) and the access token is spent.
      return undefined;
    }
    // Entra accepts the scope on refresh (a subset of the grant); generic servers may narrow a
    // grant, so they get no scope and keep what they granted.
    const grant: Record<string, string> = { grant_type: 'refresh_token', refresh_token: secrets.refreshToken };
    if (providerOf(settings) === 'microsoft365' && scope) grant.scope = scope;
    return grant;
  }

  private clientFor(credential: Credential): TokenClient {
    const tokenUrl = endpointsOf(credential.settings).tokenUrl;
    if (!tokenUrl || !credential.settings.clientId || credential.secrets.clientSecret === undefined) {
      throw new CredentialError(credential.name, 'CREDENTIAL_MISCONFIGURED', `Credential "${credential.name}" lacks a token URL, client id or client secret: an admin fixes it with PUT ${credentialPath(credential.name)}`);
    }
    return { tokenUrl, clientId: credential.settings.clientId, clientSecret: credential.secrets.clientSecret, clientAuthentication: credential.settings.clientAuthentication ?? 'body' };
  }

  /**
   * Asks the token endpoint, retrying transient failures `retries` times with backoff. Once
   * stop() was called, no further attempt is made (the wait between attempts ends at once) and
   * the last transient error stands; an attempt already sent runs to its end (or its timeout).
   */
  private async requestWithRetries(client: TokenClient, grant: Record<string, string>, retries: number): Promise<{ response: TokenResponse; attempts: number }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return { response: await requestToken(client, grant, { timeoutMs: this.requestTimeoutMs }), attempts: attempt + 1 };
      } catch (err) {
        if (!(err instanceof TokenEndpointError) || err.classification !== 'transient' || attempt >= retries || this.stopped) throw err;
        // A longer Retry-After than a message can wait, or throttling without one: no retry (it would come too early),
        // the failure stands and the credential waits (notBefore).
        if ((err.retryAfterMs ?? 0) > MAX_RETRY_AFTER_MS || (err.throttled && err.retryAfterMs === undefined)) throw err;
        const wait = Math.max(this.retryDelaysMs[attempt] ?? 0, err.retryAfterMs ?? 0);
        try {
          await sleep(wait, undefined, { signal: this.stopping.signal });
        } catch {
          throw err;
        }
      }
    }
  }
}

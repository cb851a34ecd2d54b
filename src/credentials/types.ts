import { HttpError } from '../errors.ts';

export const CREDENTIAL_TYPES = ['oauth2-authorization-code', 'oauth2-client-credentials', 'basic'] as const;
export type CredentialType = (typeof CREDENTIAL_TYPES)[number];

export const PROVIDERS = ['microsoft365', 'generic'] as const;
export type Provider = (typeof PROVIDERS)[number];

export type ClientAuthentication = 'body' | 'basic';

/**
 * Where a credential stands.
 * - `unauthorized`: never authorized (authorization code) or no token fetched yet (client credentials)
 * - `authorized`: tokens are held and refresh by themselves
 * - `reauthorization-required`: the user must sign in again (expired, revoked or inactive grant, MFA…)
 * - `consent-required`: the user or an administrator must consent to the scope
 * - `misconfigured`: the admin must fix the credential (client secret, client id, redirect URI, scope)
 * - `blocked`: a policy of the authorization server refuses tokens (Conditional Access, disabled user)
 */
export const CREDENTIAL_STATUSES = ['unauthorized', 'authorized', 'reauthorization-required', 'consent-required', 'misconfigured', 'blocked'] as const;
export type CredentialStatus = (typeof CREDENTIAL_STATUSES)[number];

/** Statuses in which every token request fails at once, until an admin updates or re-authorizes. */
export type FailingStatus = Exclude<CredentialStatus, 'unauthorized' | 'authorized'>;
export const FAILING_STATUSES: readonly FailingStatus[] = ['reauthorization-required', 'consent-required', 'misconfigured', 'blocked'];

export function isFailingStatus(status: unknown): status is FailingStatus {
  return FAILING_STATUSES.includes(status as FailingStatus);
}

/** Non-secret settings, as the admin gave them (which fields apply depends on the type). */
export interface CredentialSettings {
  description?: string;
  provider?: Provider;
  tenant?: string;
  authorizationUrl?: string;
  tokenUrl?: string;
  clientId?: string;
  clientSecretExpiresAt?: string;
  scope?: string;
  clientAuthentication?: ClientAuthentication;
  /** basic: the user name; authorization code: the user the admin expects (shown until an id_token names one). */
  user?: string;
}

/** Everything secret about a credential; stored only inside the encrypted blob. */
export interface CredentialSecrets {
  clientSecret?: string;
  password?: string;
  accessToken?: string;
  refreshToken?: string;
  tokenType?: string;
}

/** The token endpoint's error, as kept on the credential (never a secret). */
export interface LastError {
  /** OAuth `error`, e.g. invalid_grant; `network_error` / `timeout` / `invalid_response` for failures without one. */
  error: string;
  /** Entra's AADSTS codes (`error_codes`). */
  errorCodes: number[];
  description?: string;
  traceId?: string;
  correlationId?: string;
  /** HTTP status of the token endpoint's answer, when there was one. */
  httpStatus?: number;
  /** What was being done: authorization_code (callback), refresh_token, client_credentials. */
  grantType?: string;
  /** ISO time it happened. */
  at: string;
}

/** Non-secret runtime state. */
export interface CredentialState {
  status?: CredentialStatus;
  /** The user the credential is authorized as (from the id_token, else the admin's `user`). */
  user?: string;
  /** ISO expiry of the current access token. */
  expiresAt?: string;
  /** ISO time the current access token was obtained. */
  lastRefreshAt?: string;
  /** ISO time of the last successful authorization in the browser. */
  authorizedAt?: string;
  /** Scope the server granted (as it echoed it). */
  grantedScope?: string;
  lastError?: LastError;
}

/** A credential with its secrets decrypted: lives only in memory. */
export interface Credential {
  name: string;
  type: CredentialType;
  settings: CredentialSettings;
  secrets: CredentialSecrets;
  state: CredentialState;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The path the authorization server sends the browser back to (after IFLOW_PUBLIC_URL). */
export const CALLBACK_PATH = '/itspaces/odata/api/v1/OAuthTokenFromCode';
/** CPI's short form of the callback, also served. */
export const SHORT_CALLBACK_PATH = '/OAuthTokenFromCode';

export type CredentialErrorCode =
  | 'CREDENTIAL_NOT_FOUND'
  | 'CREDENTIAL_WRONG_TYPE'
  | 'CREDENTIAL_NOT_AUTHORIZED'
  | 'CREDENTIAL_REAUTHORIZATION_REQUIRED'
  | 'CREDENTIAL_CONSENT_REQUIRED'
  | 'CREDENTIAL_MISCONFIGURED'
  | 'CREDENTIAL_BLOCKED'
  | 'CREDENTIAL_TOKEN_UNAVAILABLE'
  | 'CREDENTIAL_UNREADABLE';

/**
 * Why a token or password could not be handed out. The message names the credential and says
 * what to do; it never holds a secret.
 *
 * `statusCode`: 503 when the credential exists but cannot give a token right now (not yet
 * authorized, needs re-authorization/consent/fixing, blocked, or the token endpoint is down): the
 * message can be sent again once that is resolved. 500 when the flow names a credential that does
 * not exist or has the wrong type (a deployment error).
 */
export class CredentialError extends HttpError {
  constructor(
    readonly credential: string,
    code: CredentialErrorCode,
    message: string,
    options: { statusCode?: number; credentialStatus?: CredentialStatus; lastError?: LastError; retryAfterSeconds?: number } = {},
  ) {
    super(options.statusCode ?? 503, code, message, undefined, options.retryAfterSeconds);
    this.name = 'CredentialError';
    this.credentialStatus = options.credentialStatus;
    this.lastError = options.lastError;
  }

  declare readonly code: CredentialErrorCode;
  /** The credential's status when this was thrown, if it has one. */
  readonly credentialStatus?: CredentialStatus;
  /** The token endpoint's error behind it, if any (no secrets). */
  readonly lastError?: LastError;
}

const STATUS_CODES: Record<FailingStatus, CredentialErrorCode> = {
  'reauthorization-required': 'CREDENTIAL_REAUTHORIZATION_REQUIRED',
  'consent-required': 'CREDENTIAL_CONSENT_REQUIRED',
  misconfigured: 'CREDENTIAL_MISCONFIGURED',
  blocked: 'CREDENTIAL_BLOCKED',
};

function errorSummary(lastError: LastError | undefined): string {
  if (!lastError) return '';
  const codes = lastError.errorCodes.map((c) => `AADSTS${c}`).join(', ');
  return ` (${lastError.error}${codes ? `, ${codes}` : ''})`;
}

/** The admin API's path of credential `name`. */
export function credentialPath(name: string): string {
  return `/api/v1/credentials/${encodeURIComponent(name)}`;
}

export function authorizePath(name: string): string {
  return `${credentialPath(name)}/authorize`;
}

/** The error every token request gets while a credential is in a failing status. */
export function failingStatusError(name: string, status: FailingStatus, lastError?: LastError, type: CredentialType = 'oauth2-authorization-code'): CredentialError {
  const why = errorSummary(lastError);
  const fix = `PUT ${credentialPath(name)}`;
  if (type !== 'oauth2-authorization-code') {
    // Nothing to authorize in a browser: the admin fixes the settings (or the policy).
    const what = status === 'blocked' ? 'is blocked by a policy of the authorization server' : status === 'consent-required' ? 'lacks admin consent for its scope' : 'is misconfigured';
    return new CredentialError(name, STATUS_CODES[status], `Credential "${name}" ${what}${why}: an admin fixes it (client secret, client id, token URL or scope, or the tenant's consent and policies) and saves it with ${fix}`, {
      credentialStatus: status,
      lastError,
    });
  }
  const authorize = authorizePath(name);
  const messages: Record<FailingStatus, string> = {
    'reauthorization-required': `Credential "${name}" must be re-authorized${why}: an admin opens ${authorize}`,
    'consent-required': `Credential "${name}" lacks consent for its scope${why}: the user or a tenant administrator consents, then an admin opens ${authorize}`,
    misconfigured: `Credential "${name}" is misconfigured${why}: an admin fixes it (client secret, client id, redirect URI or scope) with ${fix}${
      lastError?.grantType === 'authorization_code' ? `, then opens ${authorize}` : ''
    }`,
    blocked: `Credential "${name}" is blocked by a policy of the authorization server${why}: an admin resolves the policy (Conditional Access, disabled or locked user), then opens ${authorize}`,
  };
  return new CredentialError(name, STATUS_CODES[status], messages[status], { credentialStatus: status, lastError });
}

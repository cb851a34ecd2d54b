import { HttpError } from '../errors.ts';
import type { CredentialInput, CredentialView } from './schemas.ts';
import { effectiveScope, endpointsOf, entraAuthorizationUrl, entraTokenUrl, providerOf, redirectUri, splitScope } from './providers.ts';
import { authorizePath, type Credential, type CredentialSecrets, type CredentialSettings, type CredentialType } from './types.ts';

const COMMON = ['name', 'type', 'description'] as const;
const FIELDS: Record<CredentialType, readonly string[]> = {
  'oauth2-authorization-code': [...COMMON, 'provider', 'tenant', 'authorizationUrl', 'tokenUrl', 'clientId', 'clientSecret', 'clientSecretExpiresAt', 'scope', 'clientAuthentication', 'user'],
  'oauth2-client-credentials': [...COMMON, 'provider', 'tenant', 'tokenUrl', 'clientId', 'clientSecret', 'clientSecretExpiresAt', 'scope', 'clientAuthentication'],
  basic: [...COMMON, 'user', 'password'],
};

function checkUrl(field: string, value: string | undefined, problems: string[]): void {
  if (value === undefined) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${field} must be an absolute URL`);
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push(`${field} must be an http or https URL`);
  if (url.username || url.password) problems.push(`${field} must not carry user info`);
  if (url.hash) problems.push(`${field} must not have a fragment`);
}

/**
 * Checks a POST/PUT body against its type and turns it into settings and the secrets it sets.
 * On PUT (`existing` given) secret fields may be left out: the stored ones stay.
 */
export function normalizeInput(input: CredentialInput, existing?: Credential): { settings: CredentialSettings; secrets: CredentialSecrets } {
  const problems: string[] = [];
  const { type } = input;
  for (const field of Object.keys(input)) {
    if (!FIELDS[type].includes(field)) problems.push(`${field} does not apply to type ${type}`);
  }
  const need = (field: keyof CredentialInput, ok: boolean) => {
    if (!ok) problems.push(`type ${type} needs ${field}`);
  };
  const settings: CredentialSettings = { description: input.description };
  const secrets: CredentialSecrets = {};

  if (type === 'basic') {
    need('user', input.user !== undefined);
    if (input.user !== undefined && input.user.includes(':')) problems.push('user must not contain ":" (HTTP Basic cannot carry it)');
    need('password', input.password !== undefined || existing?.secrets.password !== undefined);
    settings.user = input.user;
    if (input.password !== undefined) secrets.password = input.password;
  } else {
    const provider = providerOf(input);
    settings.provider = provider;
    settings.tenant = input.tenant;
    settings.clientId = input.clientId;
    settings.scope = input.scope === undefined ? undefined : splitScope(input.scope).join(' ');
    settings.clientAuthentication = input.clientAuthentication;
    settings.clientSecretExpiresAt = input.clientSecretExpiresAt;
    if (input.clientSecretExpiresAt !== undefined && Number.isNaN(Date.parse(input.clientSecretExpiresAt))) problems.push('clientSecretExpiresAt must be an ISO date or date-time');
    checkUrl('authorizationUrl', input.authorizationUrl, problems);
    checkUrl('tokenUrl', input.tokenUrl, problems);
    // With a tenant, URLs equal to the tenant's Entra ones are not pinned, so a later tenant change moves them too.
    settings.authorizationUrl = provider === 'microsoft365' && input.tenant && input.authorizationUrl === entraAuthorizationUrl(input.tenant) ? undefined : input.authorizationUrl;
    settings.tokenUrl = provider === 'microsoft365' && input.tenant && input.tokenUrl === entraTokenUrl(input.tenant) ? undefined : input.tokenUrl;
    if (type === 'oauth2-authorization-code') settings.user = input.user;

    need('clientId', input.clientId !== undefined);
    need('clientSecret', input.clientSecret !== undefined || existing?.secrets.clientSecret !== undefined);
    if (input.clientSecret !== undefined) secrets.clientSecret = input.clientSecret;
    const endpoints = endpointsOf(settings);
    if (provider === 'microsoft365') {
      if (!input.tenant && (!endpoints.tokenUrl || (type === 'oauth2-authorization-code' && !endpoints.authorizationUrl))) {
        problems.push(`provider microsoft365 needs tenant (or explicit ${type === 'oauth2-authorization-code' ? 'authorizationUrl and tokenUrl' : 'tokenUrl'})`);
      }
    } else {
      if (input.tenant) problems.push('tenant applies to provider microsoft365 only');
      if (type === 'oauth2-authorization-code') need('authorizationUrl', endpoints.authorizationUrl !== undefined);
      need('tokenUrl', endpoints.tokenUrl !== undefined);
    }
  }
  if (problems.length > 0) throw new HttpError(400, 'BAD_REQUEST', `Invalid credential: ${problems.join('; ')}`, { problems });
  return { settings, secrets };
}

function secretExpiryWarning(expiresAt: string | undefined, now: number): string | undefined {
  if (!expiresAt) return undefined;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return undefined;
  const days = Math.floor((at - now) / 86_400_000);
  if (at <= now) return `The client secret expired on ${expiresAt}: create a new one at the authorization server and update this credential`;
  if (days < 30) return `The client secret expires on ${expiresAt} (in ${days} day${days === 1 ? '' : 's'}): create a new one and update this credential before then`;
  return undefined;
}

/** A credential as reads answer it: no secret or token, ever. */
export function toView(credential: Credential, publicUrl: string, now = Date.now()): CredentialView {
  const { name, type, settings, state, secrets } = credential;
  const warnings: string[] = [];
  const base = { name, type, description: settings.description, createdAt: credential.createdAt, updatedAt: credential.updatedAt, warnings };
  if (type === 'basic') return { ...base, user: settings.user };

  const endpoints = endpointsOf(settings);
  const expiry = secretExpiryWarning(settings.clientSecretExpiresAt, now);
  if (expiry) warnings.push(expiry);
  const view: CredentialView = {
    ...base,
    provider: providerOf(settings),
    tenant: settings.tenant,
    tokenUrl: endpoints.tokenUrl,
    clientId: settings.clientId,
    scope: effectiveScope(type, settings),
    clientAuthentication: settings.clientAuthentication ?? 'body',
    clientSecretExpiresAt: settings.clientSecretExpiresAt,
    status: state.status ?? 'unauthorized',
    expiresAt: state.expiresAt,
    lastRefreshAt: state.lastRefreshAt,
    grantedScope: state.grantedScope,
    lastError: state.lastError,
  };
  if (type === 'oauth2-authorization-code') {
    const redirect = redirectUri(publicUrl);
    Object.assign(view, {
      authorizationUrl: endpoints.authorizationUrl,
      user: state.user ?? settings.user,
      authorizedAt: state.authorizedAt,
      redirectUri: redirect,
      authorizeUrl: `${publicUrl}${authorizePath(name)}`,
    });
    const redirectUrl = new URL(redirect);
    if (providerOf(settings) === 'microsoft365' && redirectUrl.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(redirectUrl.hostname)) {
      warnings.push('Entra ID accepts http redirect URIs only for localhost: set IFLOW_PUBLIC_URL to the https URL iflow is reached at');
    }
    if (state.status === 'authorized' && !secrets.refreshToken) {
      warnings.push('The authorization server issued no refresh token: the credential must be re-authorized when the access token expires (add offline_access to the scope)');
    }
  }
  return view;
}

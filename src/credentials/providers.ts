import type { Credential, CredentialSettings, CredentialType } from './types.ts';
import { CALLBACK_PATH } from './types.ts';

export const ENTRA_LOGIN_BASE_URL = 'https://login.microsoftonline.com';

export function entraAuthorizationUrl(tenant: string): string {
  return `${ENTRA_LOGIN_BASE_URL}/${encodeURIComponent(tenant)}/oauth2/v2.0/authorize`;
}

export function entraTokenUrl(tenant: string): string {
  return `${ENTRA_LOGIN_BASE_URL}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`;
}

/** The provider a credential uses: as given, else microsoft365 when a tenant is given, else generic. */
export function providerOf(settings: CredentialSettings): 'microsoft365' | 'generic' {
  return settings.provider ?? (settings.tenant ? 'microsoft365' : 'generic');
}

/**
 * The endpoints a credential talks to. Explicit `authorizationUrl` / `tokenUrl` always win (that is
 * how tests, sovereign clouds such as login.microsoftonline.us, and proxies are configured); with
 * provider microsoft365 a missing one follows from `tenant`.
 */
export function endpointsOf(settings: CredentialSettings): { authorizationUrl?: string; tokenUrl?: string } {
  const m365 = providerOf(settings) === 'microsoft365' && settings.tenant;
  return {
    authorizationUrl: settings.authorizationUrl ?? (m365 ? entraAuthorizationUrl(settings.tenant!) : undefined),
    tokenUrl: settings.tokenUrl ?? (m365 ? entraTokenUrl(settings.tenant!) : undefined),
  };
}

export function splitScope(scope: string | undefined): string[] {
  return (scope ?? '').split(/\s+/).filter(Boolean);
}

/**
 * The scope as requested at the authorization server. Authorization code with microsoft365:
 * `offline_access` is added when missing (without it Entra issues no refresh token).
 */
export function effectiveScope(type: CredentialType, settings: CredentialSettings): string {
  const scopes = splitScope(settings.scope);
  if (type === 'oauth2-authorization-code' && providerOf(settings) === 'microsoft365' && !scopes.some((s) => s.toLowerCase() === 'offline_access')) {
    scopes.push('offline_access');
  }
  return scopes.join(' ');
}

/** The redirect URI registered at the authorization server. */
export function redirectUri(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${CALLBACK_PATH}`;
}

/**
 * What the credential's tokens are bound to. When it changes (client id, endpoints, scope), tokens
 * obtained before are dropped and the credential has to be authorized again.
 */
export function identityOf(credential: Pick<Credential, 'type' | 'settings'>): string {
  const { settings, type } = credential;
  if (type === 'basic') return 'basic';
  const endpoints = endpointsOf(settings);
  // Scopes are an unordered set (RFC 6749 §3.3): "a b" and "b  a" ask for the same grant. Their case is kept, as
  // the RFC makes them case-sensitive (Entra is not, a generic server may be).
  const scopes = [...new Set(splitScope(effectiveScope(type, settings)))].sort().join(' ');
  return JSON.stringify([type, endpoints.authorizationUrl ?? null, endpoints.tokenUrl ?? null, settings.clientId ?? null, scopes]);
}

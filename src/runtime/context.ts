import type { Logger } from 'pino';

/** What the secure store hands out for an OAuth 2.0 credential. */
export interface AccessToken {
  accessToken: string;
  tokenType: string;
  /** The user the credential was authorized by (authorization code), if known. */
  user?: string;
  /** ISO time the access token expires. */
  expiresAt: string;
}

export interface UserCredential {
  user: string;
  password: string;
}

/**
 * Security material as the runtime sees it. Implemented by src/credentials; errors are
 * CredentialError (with a statusCode and a code) naming the credential and what to do.
 */
export interface SecurityMaterial {
  /**
   * A valid access token of an `oauth2-authorization-code` or `oauth2-client-credentials` credential,
   * refreshed when it is close to expiry. With `rejectedToken` (a receiver answered 401 to it) the
   * token is refreshed unless the stored one is already newer than the rejected one, or renewing for that
   * `receiver` (host) is paused.
   */
  getAccessToken(name: string, options?: { rejectedToken?: string; receiver?: string }): Promise<AccessToken>;
  /**
   * `receiver` (host) answered 401 to a token of `name` renewed for its 401 as well: renewing does not help
   * there (a token for another audience, a gateway that wants something else), so for a while its 401s renew
   * no token of `name`. Other receivers' 401s still do.
   */
  renewedTokenRefused(name: string, receiver: string): void;
  /** The user and password of a `basic` credential. */
  getUserCredential(name: string): Promise<UserCredential>;
}

/** The secure store as scripts see it (CPI's SecureStoreService, in TypeScript). */
export interface SecureStore {
  getAccessToken(name: string): Promise<AccessToken>;
  /** CPI's own name, typo included, so ported scripts read the same. */
  getAccesTokenForOauth2AuthorizationCodeCredential(name: string): Promise<AccessToken>;
  getUserCredential(name: string): Promise<UserCredential>;
}

/** The second argument of a script's `processData(message, context)`. */
export interface ScriptContext {
  secureStore: SecureStore;
  /** The flow's externalized parameters, overrides applied (read-only: every message sees the same). */
  parameters: Readonly<Record<string, string>>;
  /** A pino child logger bound to the message (messageId, correlationId, flow). */
  log: Logger;
}

/** What the secure store tells of what it hands out. */
export interface SecureStoreHooks {
  /** Every secret it gives (to clean a script's error text of it), with its expiry when it has one (an access token). */
  handedOut?(secret: string, expiresAtMs?: number): void;
  /** Every access token it gives, with its credential's name (so an http step can renew one a receiver refused). */
  tokenIssued?(accessToken: string, credential: string): void;
}

/** The secure store over `material`, telling `hooks` of what it hands out. */
export function secureStoreFor(material: SecurityMaterial, hooks: SecureStoreHooks = {}): SecureStore {
  const { handedOut } = hooks;
  const getAccessToken = async (name: string) => {
    const token = await material.getAccessToken(name);
    handedOut?.(token.accessToken, Date.parse(token.expiresAt));
    hooks.tokenIssued?.(token.accessToken, name);
    return token;
  };
  return {
    getAccessToken,
    getAccesTokenForOauth2AuthorizationCodeCredential: getAccessToken,
    getUserCredential: async (name: string) => {
      const credential = await material.getUserCredential(name);
      if (handedOut) {
        handedOut(credential.password);
        // What a script builds from it for a Basic header.
        handedOut(Buffer.from(`${credential.user}:${credential.password}`).toString('base64'));
      }
      return credential;
    },
  };
}

import { Type, type Static } from '@fastify/type-provider-typebox';
import { CREDENTIAL_STATUSES, CREDENTIAL_TYPES, PROVIDERS } from './types.ts';

/** Credential names: 1–64 of A-Z a-z 0-9 . _ - (anything else is a 400). */
// Not dots alone: `.` and `..` in a URL path (its authorize link) are resolved away before they reach iflow.
export const CREDENTIAL_NAME_PATTERN = '^(?!\\.+$)[A-Za-z0-9._-]{1,64}$';
export const CredentialName = Type.String({ pattern: CREDENTIAL_NAME_PATTERN, description: '1–64 of A-Z a-z 0-9 . _ -, not dots alone' });
export const NameParams = Type.Object({ name: CredentialName });

/** One of `values` (a list of types.ts, which stays the only place they are written), typed as its union. */
const oneOf = <T extends string>(values: readonly T[]) => Type.Unsafe<T>(Type.Union(values.map((value) => Type.Literal(value))));

const CredentialTypeSchema = oneOf(CREDENTIAL_TYPES);
const ProviderSchema = oneOf(PROVIDERS);
const StatusSchema = oneOf(CREDENTIAL_STATUSES);

// Printable ASCII: what OAuth 2.0 allows in client ids and secrets (RFC 6749 appendix A).
const PRINTABLE = '^[\\x20-\\x7E]+$';
const Url = Type.String({ minLength: 1, maxLength: 2048, description: 'absolute http(s) URL' });

/**
 * The request body of POST (with `name`) and PUT. One object for every type; which fields a type
 * takes and needs is checked by `normalizeInput`, with a message naming the field.
 * Secret fields (clientSecret, password) are write-only; on PUT they may be left out to keep the stored ones.
 */
export const CredentialInput = Type.Object(
  {
    name: Type.Optional(CredentialName),
    type: CredentialTypeSchema,
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    provider: Type.Optional(ProviderSchema),
    tenant: Type.Optional(Type.String({ pattern: '^(?!\\.+$)[A-Za-z0-9._-]{1,128}$', description: 'Entra tenant: id, domain, common, organizations or consumers' })),
    authorizationUrl: Type.Optional(Url),
    tokenUrl: Type.Optional(Url),
    clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: PRINTABLE })),
    clientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: PRINTABLE, description: 'write-only' })),
    clientSecretExpiresAt: Type.Optional(Type.String({ minLength: 10, maxLength: 40, description: 'ISO date or date-time the client secret expires (for warnings)' })),
    scope: Type.Optional(Type.String({ maxLength: 4000 })),
    clientAuthentication: Type.Optional(Type.Union([Type.Literal('body'), Type.Literal('basic')])),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'write-only' })),
  },
  { additionalProperties: false },
);
export type CredentialInput = Static<typeof CredentialInput>;

export const LastErrorView = Type.Object({
  error: Type.String(),
  errorCodes: Type.Array(Type.Integer()),
  description: Type.Optional(Type.String()),
  traceId: Type.Optional(Type.String()),
  correlationId: Type.Optional(Type.String()),
  httpStatus: Type.Optional(Type.Integer()),
  grantType: Type.Optional(Type.String()),
  at: Type.String(),
});

/** What reads answer: settings, status and token metadata; never a secret or token (the serializer drops anything not listed). */
export const CredentialView = Type.Object({
  name: Type.String(),
  type: CredentialTypeSchema,
  description: Type.Optional(Type.String()),
  provider: Type.Optional(Type.String()),
  tenant: Type.Optional(Type.String()),
  authorizationUrl: Type.Optional(Type.String()),
  tokenUrl: Type.Optional(Type.String()),
  clientId: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String()),
  clientAuthentication: Type.Optional(Type.String()),
  clientSecretExpiresAt: Type.Optional(Type.String()),
  user: Type.Optional(Type.String()),
  status: Type.Optional(StatusSchema),
  expiresAt: Type.Optional(Type.String()),
  lastRefreshAt: Type.Optional(Type.String()),
  authorizedAt: Type.Optional(Type.String()),
  grantedScope: Type.Optional(Type.String()),
  redirectUri: Type.Optional(Type.String()),
  authorizeUrl: Type.Optional(Type.String({ description: 'open in a browser (as an admin) to authorize' })),
  lastError: Type.Optional(LastErrorView),
  warnings: Type.Array(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export type CredentialView = Static<typeof CredentialView>;

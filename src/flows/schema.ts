import { Type, type Static } from 'typebox';

/**
 * The flow file format, defined once: ajv validates flow.yaml against this JSON Schema and
 * TypeScript takes its types from the same definition. `iflow check` prints the schema's errors.
 */

const Duration = Type.Union([Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?\\s*$' }), Type.Number({ minimum: 0 })], {
  description: 'a duration: "500ms", "30s", "2m", or a number of milliseconds',
});

const Size = Type.Union([Type.String({ pattern: '^\\s*\\d+\\s*(B|KB|MB|GB)?\\s*$' }), Type.Integer({ minimum: 1 })], {
  description: 'a size: "10MB", "512KB", or a number of bytes',
});

/** The HTTP methods a sender accepts and an http step sends. */
const Method = Type.Union([Type.Literal('POST'), Type.Literal('PUT'), Type.Literal('PATCH'), Type.Literal('GET'), Type.Literal('DELETE')]);

const HeaderName = Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' });

const Sender = Type.Object(
  {
    path: Type.String({ pattern: '^/http(/[A-Za-z0-9._~%!$&\'()*+,;=:@-]+)+$', description: 'endpoint path, always under /http/' }),
    method: Type.Optional(Method),
    role: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    schema: Type.Optional(Type.String({ minLength: 1, description: 'JSON Schema file (relative to the flow folder) the JSON body must satisfy' })),
    allowedHeaders: Type.Optional(Type.Array(HeaderName, { uniqueItems: true })),
    bodyLimit: Type.Optional(Size),
  },
  { additionalProperties: false },
);

const Expression = Type.String({ description: 'text with ${header.X}, ${property.x}, ${body}, ${messageId}, ${date:now:yyyy-MM-dd} inside' });

const SetStep = Type.Object(
  {
    // A name that is not a header name would fail every message at the reply: refused at deploy instead.
    headers: Type.Optional(Type.Record(HeaderName, Expression, { additionalProperties: false, description: 'header names: letters, digits and !#$%&\'*+.^_`|~-' })),
    properties: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Expression)),
    body: Type.Optional(Expression),
  },
  { additionalProperties: false, minProperties: 1 },
);

const CredentialName = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' });

const HttpAuth = Type.Union([
  Type.Object({ oauth2AuthorizationCode: CredentialName }, { additionalProperties: false }),
  Type.Object({ oauth2ClientCredentials: CredentialName }, { additionalProperties: false }),
  Type.Object({ basic: CredentialName }, { additionalProperties: false }),
]);

const HttpStep = Type.Object(
  {
    address: Type.String({ minLength: 1, description: 'receiver URL; ${header.x} and ${property.x} allowed' }),
    method: Type.Optional(Method),
    auth: Type.Optional(HttpAuth),
    requestHeaders: Type.Optional(Type.Array(HeaderName, { uniqueItems: true })),
    responseHeaders: Type.Optional(Type.Array(HeaderName, { uniqueItems: true })),
    timeout: Type.Optional(Duration),
    throwOnFailure: Type.Optional(Type.Boolean()),
    retry: Type.Optional(
      Type.Object(
        { attempts: Type.Integer({ minimum: 0, maximum: 10 }), delay: Type.Optional(Duration) },
        { additionalProperties: false, description: 'retries on connection errors, 429, 502, 503 and 504' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const STEP_KINDS = ['script', 'mapping', 'set', 'http'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** A step has an optional name and exactly one kind key (checked after the schema, for a clearer error). */
const Step = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    timeout: Type.Optional(Duration),
    script: Type.Optional(Type.String({ pattern: '\\.(ts|mts|js|mjs)$', description: 'script module (relative to the flow folder)' })),
    mapping: Type.Optional(Type.String({ minLength: 1, description: 'JSONata file (relative to the flow folder)' })),
    set: Type.Optional(SetStep),
    http: Type.Optional(HttpStep),
  },
  { additionalProperties: false },
);

export const FlowSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' })),
    description: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
    sender: Sender,
    steps: Type.Array(Step, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type FlowDefinition = Static<typeof FlowSchema>;
export type StepDefinition = Static<typeof Step>;
export type SetStepDefinition = Static<typeof SetStep>;
export type HttpStepDefinition = Static<typeof HttpStep>;
export type HttpAuthDefinition = Static<typeof HttpAuth>;

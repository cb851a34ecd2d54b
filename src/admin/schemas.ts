import { Type } from '@fastify/type-provider-typebox';

/** The error body every admin route answers with: `{ error: { code, message, details? } }`. */
export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    messageId: Type.Optional(Type.String()),
    details: Type.Optional(Type.Unknown()),
  }),
});

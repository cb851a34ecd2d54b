import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { HttpError } from '../errors.ts';
import { Authenticator, hasAnyRole, type AuthenticatedUser } from './authenticator.ts';
import { ensureBootstrapAdmin } from './bootstrap.ts';

export { hasAnyRole, type AuthenticatedUser } from './authenticator.ts';

declare module 'fastify' {
  interface FastifyInstance {
    authenticator: Authenticator;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
  }
}

/**
 * Lets a request through when its Basic credentials belong to a user holding one of `roles` (admin
 * always passes) and sets `request.user`: else a 401 (with the Basic challenge) or a 403 HttpError.
 * `what` names what needs the role, for the 403 message.
 */
export async function authorizeRequest(request: FastifyRequest, reply: FastifyReply, roles: readonly string[], what = 'this'): Promise<AuthenticatedUser> {
  const user = await request.server.authenticator.authenticate(request.headers.authorization);
  if (!user) {
    reply.header('WWW-Authenticate', 'Basic realm="iflow", charset="UTF-8"');
    throw new HttpError(401, 'UNAUTHORIZED', 'Authentication required: send HTTP Basic credentials of an iflow user');
  }
  if (!hasAnyRole(user, roles)) throw new HttpError(403, 'FORBIDDEN', `User "${user.name}" lacks the role ${what} needs (${roles.join(' or ')})`);
  request.user = user;
  return user;
}

/**
 * `authorizeRequest`'s synchronous fast path, for hooks on the message hot path: the user when the
 * header's login is cached and holds one of `roles` (and sets `request.user`), else undefined, and
 * the caller falls back to `authorizeRequest`, which decides (401, 403 or a verified login).
 */
export function cachedAuthorization(request: FastifyRequest, roles: readonly string[]): AuthenticatedUser | undefined {
  const user = request.server.authenticator.cachedOn(request.raw.socket, request.headers.authorization);
  if (!user || !hasAnyRole(user, roles)) return undefined;
  request.user = user;
  return user;
}

/**
 * An onRequest hook running `authorizeRequest` for `roles`. onRequest, not preHandler: callers are
 * checked before their body is parsed and validated.
 */
export function requireRole(...roles: string[]): onRequestAsyncHookHandler {
  return async function checkRole(this: unknown, request: FastifyRequest, reply: FastifyReply) {
    await authorizeRequest(request, reply, roles);
  };
}

/** Users, passwords and Basic authentication: decorates `authenticator` and `request.user`. */
export const securityPlugin = fp(
  async (app) => {
    app.decorate('authenticator', new Authenticator(app.store.users));
    app.decorateRequest('user', null);
    await ensureBootstrapAdmin(app.config, app.store.users, app.log);
  },
  { name: 'iflow-security' },
);

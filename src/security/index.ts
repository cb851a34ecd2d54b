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
 * An onRequest hook that lets a request through when its Basic credentials belong to a user holding
 * one of `roles` (admin always passes): 401 without valid credentials, 403 with the wrong role.
 * onRequest, not preHandler: callers are checked before their body is parsed and validated.
 */
export function requireRole(...roles: string[]): onRequestAsyncHookHandler {
  return async function checkRole(this: unknown, request: FastifyRequest, reply: FastifyReply) {
    const user = await request.server.authenticator.authenticate(request.headers.authorization);
    if (!user) {
      reply.header('WWW-Authenticate', 'Basic realm="iflow", charset="UTF-8"');
      throw new HttpError(401, 'UNAUTHORIZED', 'Authentication required: send HTTP Basic credentials of an iflow user');
    }
    if (!hasAnyRole(user, roles)) {
      throw new HttpError(403, 'FORBIDDEN', `User "${user.name}" lacks the role this needs (${roles.join(' or ')})`);
    }
    request.user = user;
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

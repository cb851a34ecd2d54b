import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { HttpError } from '../errors.ts';
import { Authenticator, VerificationsBusyError, hasAnyRole, parseBasicAuth, type AuthenticatedUser } from './authenticator.ts';
import { ensureBootstrapAdmin } from './bootstrap.ts';
import { ThrottledWarning } from '../logging/throttled-warning.ts';

export { hasAnyRole, type AuthenticatedUser } from './authenticator.ts';

declare module 'fastify' {
  interface FastifyInstance {
    authenticator: Authenticator;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
  }
}

/** Logged at most this often while logins are refused as busy (a flood of guesses must not flood the log too). */
const BUSY_WARNING_INTERVAL_MS = 10_000;

/** The request's verified user, if any; a 503 HttpError (Retry-After 1 s) when too many logins are being verified. */
async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<AuthenticatedUser | undefined> {
  try {
    return await request.server.authenticator.authenticate(request.headers.authorization);
  } catch (err) {
    if (!(err instanceof VerificationsBusyError)) throw err;
    reply.header('Retry-After', '1');
    throw new HttpError(503, 'AUTHENTICATION_BUSY', 'Too many logins are being verified right now: retry in a second');
  }
}

/** Why a login was refused, in words that never tell whether the user exists. */
function refusalMessage(authorization: string | undefined): string {
  if (!authorization) return 'Authentication required: send HTTP Basic credentials of an iflow user';
  if (!parseBasicAuth(authorization)) return 'Only HTTP Basic credentials of an iflow user are accepted here (Authorization: Basic base64(user:password))';
  return 'The HTTP Basic credentials were not accepted: unknown user or wrong password';
}

/**
 * Lets a request through when its Basic credentials belong to a user holding one of `roles` (admin
 * always passes) and sets `request.user`: else a 401 (with the Basic challenge) or a 403 HttpError.
 * `what` names what needs the role, for the 403 message.
 */
export async function authorizeRequest(request: FastifyRequest, reply: FastifyReply, roles: readonly string[], what = 'this'): Promise<AuthenticatedUser> {
  const user = await authenticate(request, reply);
  if (!user) {
    reply.header('WWW-Authenticate', 'Basic realm="iflow", charset="UTF-8"');
    throw new HttpError(401, 'UNAUTHORIZED', refusalMessage(request.headers.authorization));
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
    // The first refusal is logged at once; while refusals go on, their count every 10 s.
    const busy = new ThrottledWarning(app.log, {
      message: 'too many logins being verified at once: new ones refused with 503',
      summary: 'logins still refused with 503: too many being verified at once',
      intervalMs: BUSY_WARNING_INTERVAL_MS,
    });
    app.addHook('onClose', async () => busy.close());
    const onBusy = (running: number) => busy.note({ running });
    app.decorate('authenticator', new Authenticator(app.store.users, { onBusy }));
    // Another instance sharing the store (PostgreSQL) changed a user: its cached logins must go here too, at once.
    // This watcher also reports a lost connection to the announcements (it serves the credentials' watcher too).
    const stopWatching = app.store.users.watch({
      changed: (name) => app.authenticator.invalidate(name),
      trouble: (err) =>
        app.log.warn({ reason: err.message }, 'cannot hear of changes made by other instances sharing the store: retrying (cached logins and credentials are dropped once heard again)'),
    });
    app.addHook('onClose', async () => stopWatching());
    app.decorateRequest('user', null);
    await ensureBootstrapAdmin(app.config, app.store.users, app.log);
  },
  { name: 'iflow-security' },
);

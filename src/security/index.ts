import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { HttpError } from '../errors.ts';
import { Authenticator, VerificationsBusyError, hasAnyRole, parseBasicAuth, type AuthenticatedUser } from './authenticator.ts';
import { ensureBootstrapAdmin } from './bootstrap.ts';
import { throttledWarning } from '../logging/throttled-warning.ts';

declare module 'fastify' {
  interface FastifyInstance {
    authenticator: Authenticator;
    /** Notes a caller refused (401, 403) at the administration API, for the throttled warning. */
    noteAdminRefusal(request: FastifyRequest, statusCode: number): void;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
  }
}

/**
 * A throttled warning for callers refused (401, 403): the first at once, with `statusCode`, `user` and
 * `remoteAddress` beside the caller's `fields`, then their count every 10 s while refusals go on. The user is
 * named only when that user exists: a caller may send anything as its user name, its password included.
 */
export function refusalWarning(
  app: FastifyInstance,
  text: { message: string; summary: string },
  listed: Readonly<Record<string, string>>,
): (request: FastifyRequest, statusCode: number, fields?: Record<string, string>) => void {
  const refusals = throttledWarning(app, app.log, {
    ...text,
    listed: { ...listed, statusCode: 'statusCodes', user: 'users', remoteAddress: 'remoteAddresses' },
  });
  return (request, statusCode, fields) => {
    const name = parseBasicAuth(request.headers.authorization)?.user;
    const user = name !== undefined && request.server.authenticator.isKnownUser(name) ? name : undefined;
    refusals.note({ ...fields, statusCode, user, remoteAddress: request.ip });
  };
}

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
  if (!hasAnyRole(user, roles)) {
    const accepted = roles.includes('admin') ? roles : [...roles, 'admin'];
    throw new HttpError(403, 'FORBIDDEN', `User "${user.name}" lacks the role ${what} needs (${accepted.join(' or ')})`);
  }
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
    try {
      await authorizeRequest(request, reply, roles);
    } catch (err) {
      // Without credentials a 401 is the challenge a browser starts every login with, not a refusal.
      const refused = err instanceof HttpError && ((err.statusCode === 401 && request.headers.authorization !== undefined) || err.statusCode === 403);
      if (refused) request.server.noteAdminRefusal(request, (err as HttpError).statusCode);
      throw err;
    }
  };
}

/** Users, passwords and Basic authentication: decorates `authenticator` and `request.user`. */
export const securityPlugin = fp(
  async (app) => {
    // The first refusal is logged at once; while refusals go on, their count every 10 s.
    const busy = throttledWarning(app, app.log, {
      message: 'too many logins being verified at once: new ones refused with 503',
      summary: 'logins still refused with 503: too many being verified at once',
    });
    const onBusy = (running: number) => busy.note({ running });
    app.decorate('authenticator', new Authenticator(app.store.users, { onBusy }));
    // Another instance sharing the store (PostgreSQL) changed a user: its cached logins must go here too, at once.
    // This watcher also reports a lost connection to the announcements (it serves the credentials' watcher too):
    // it is tried again every few seconds while the database is away, so the first failure is logged at once,
    // then a count each minute, and one line when it is heard again.
    const unheard = throttledWarning(app, app.log, {
      message: 'cannot hear of changes made by other instances sharing the store: retrying (cached logins and credentials are dropped once heard again)',
      summary: 'still cannot hear of changes made by other instances sharing the store: retrying',
      intervalMs: 60_000,
      listed: { reason: 'reasons' },
    });
    let unheardSince: number | undefined;
    const stopWatching = app.store.users.watch({
      changed: (name) => app.authenticator.invalidate(name),
      trouble: (err) => {
        unheardSince ??= Date.now();
        unheard.note({ reason: err.message });
      },
      recovered: () => {
        unheard.reset();
        const unheardMs = unheardSince === undefined ? undefined : Date.now() - unheardSince;
        unheardSince = undefined;
        app.log.info({ unheardMs }, 'hearing of changes made by other instances sharing the store again: cached logins and credentials dropped');
      },
    });
    app.addHook('onClose', async () => stopWatching());
    app.decorateRequest('user', null);
    const adminRefusal = refusalWarning(
      app,
      { message: 'caller refused at the administration API', summary: 'callers still refused at the administration API' },
      { path: 'paths' },
    );
    app.decorate('noteAdminRefusal', (request: FastifyRequest, statusCode: number) => adminRefusal(request, statusCode, { path: request.url.split('?')[0] }));
    await ensureBootstrapAdmin(app.config, app.store.users, app.log);
  },
  { name: 'iflow-security' },
);

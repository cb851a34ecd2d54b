import { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/**
 * Fastify runs without a logger of its own (app.ts): with one, every request, flow messages included,
 * pays for a child logger, two response listeners and two clock reads (~3 % of a message's CPU), and
 * flow endpoints log one line per message themselves. This gives every request iflow's logger instead:
 * - requests `logged` selects (by path: the admin API) get a child logger with the request id and the
 *   "incoming request" / "request completed" lines Fastify would write, refused logins and 404s included;
 * - every other request gets the logger itself as `request.log` and `reply.log`, so Fastify's own warnings
 *   and the error handler still reach the log.
 * It is the first onRequest hook of all, so it runs before any check can answer; while the app shuts down it
 * lets `shutdown` refuse the request first. Call it before any plugin or route is registered; build Fastify
 * with `logController: new RequestLogController()`.
 */
export function logRequests(app: FastifyInstance, pinoLogger: Logger, logged: (path: string) => boolean, shutdown?: ShutdownGate): void {
  const logger = pinoLogger as FastifyBaseLogger;
  // Plugins see the root's `log` through their prototype chain: set here, before any is registered.
  app.log = logger;
  app.addHook('onRequest', (request, reply, done) => {
    if (!logged(request.url)) {
      request.log = reply.log = logger;
      if (shutdown?.closing && shutdown.refuse(request, reply)) return;
      return done();
    }
    const child = logger.child({ reqId: request.id });
    request.log = reply.log = child;
    const startedAt = performance.now();
    child.info({ req: request }, 'incoming request');
    // 'close' comes after the reply is sent, or when the connection drops first.
    reply.raw.once('close', () => {
      const responseTime = Math.round((performance.now() - startedAt) * 1000) / 1000;
      // An injected request (the admin UI's own calls) has no socket to flush to: ended is all it gets to.
      const injected = '_lightMyRequest' in request.raw;
      // The user the request was let in as, if any (the security plugin's request.user).
      const user = (request as { user?: { name?: string } | null }).user?.name;
      if (reply.raw.writableFinished || (injected && reply.raw.writableEnded)) child.info({ res: { statusCode: reply.statusCode }, responseTime, user }, 'request completed');
      else child.warn({ responseTime }, 'connection closed before the reply was sent');
    });
    if (shutdown?.closing && shutdown.refuse(request, reply)) return;
    done();
  });
}

/** Refuses requests while the app shuts down (app.ts): `refuse` answers the request and says so, or lets it through. */
export interface ShutdownGate {
  readonly closing: boolean;
  refuse(request: FastifyRequest, reply: FastifyReply): boolean;
}

/**
 * Fastify's own request lines are written by logRequests' hooks instead (Fastify would log "incoming request"
 * before any hook has given the request a logger); its other lines (stream and serializer errors…) stay.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(): void {}
}

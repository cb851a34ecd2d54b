import { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type onResponseHookHandler, type RouteOptions } from 'fastify';
import type { Logger } from 'pino';

const STARTED_AT = Symbol('requestLogStartedAt');
type TimedRequest = FastifyRequest & { [STARTED_AT]?: number };

/**
 * Fastify runs without a logger of its own (app.ts): with one, every request, flow messages included,
 * pays for a child logger, two response listeners and two clock reads, ~4 % of a message's CPU, and flow
 * endpoints log one line per message themselves. This gives every request iflow's logger instead:
 * - requests `logged` selects (by path: the admin API) get a child logger with the request id and the
 *   "incoming request" / "request completed" lines Fastify would write, failed logins included;
 * - every other request gets the logger itself as `request.log` and `reply.log`, so Fastify's own warnings
 *   and the error handler still reach the log.
 * The first onRequest hook of all, so it runs before any check can answer; the completion line is a hook
 * of the selected routes only (an onResponse hook anywhere else would cost each message its listeners).
 * Call it before any plugin or route is registered; build Fastify with `logController: new RequestLogController()`.
 */
export function logRequests(app: FastifyInstance, pinoLogger: Logger, logged: (path: string) => boolean): void {
  const logger = pinoLogger as FastifyBaseLogger;
  const completed: onResponseHookHandler = (request: FastifyRequest, reply: FastifyReply, done) => {
    const startedAt = (request as TimedRequest)[STARTED_AT];
    const responseTime = startedAt === undefined ? undefined : Math.round((performance.now() - startedAt) * 1000) / 1000;
    reply.log.info({ res: { statusCode: reply.statusCode }, responseTime }, 'request completed');
    done();
  };

  // Plugins see the root's `log` through their prototype chain: set here, before any is registered.
  app.log = logger;
  app.addHook('onRequest', (request, reply, done) => {
    if (!logged(request.url)) {
      request.log = reply.log = logger;
      return done();
    }
    const child = logger.child({ reqId: request.id });
    request.log = reply.log = child;
    (request as TimedRequest)[STARTED_AT] = performance.now();
    child.info({ req: request }, 'incoming request');
    done();
  });
  app.addHook('onRoute', (route: RouteOptions) => {
    if (logged(route.url)) route.onResponse = [...asArray(route.onResponse), completed];
  });
}

function asArray<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

/**
 * Fastify's own request lines are written by logRequests' hooks instead (Fastify would log "incoming request"
 * before any hook has given the request a logger); its other lines (stream and serializer errors…) stay.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(): void {}
}

import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { DestinationStream } from 'pino';
import type { Config } from './config/index.ts';
import { createLogger } from './logging.ts';
import { openStore, type Store } from './store/index.ts';
import { HttpError, errorBody } from './errors.ts';

export interface AppOptions {
  config: Config;
  /** Where JSON log lines go (stdout when unset); tests pass a capturing stream. */
  logStream?: DestinationStream;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    store: Store;
  }
}

function isAdminPath(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/itspaces/') || url.startsWith('/OAuthTokenFromCode');
}

/** Maps any error thrown in a route to the JSON error contract, without stack traces. */
function errorHandler(this: FastifyInstance, err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof HttpError) {
    return reply.code(err.statusCode).send(errorBody(err.code, err.message, err.details === undefined ? undefined : { details: err.details }));
  }
  if (err.validation) {
    return reply.code(400).send(errorBody('BAD_REQUEST', err.message, { details: err.validation }));
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE', 'Request body is larger than this endpoint accepts'));
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
    return reply.code(400).send(errorBody('INVALID_JSON', `Malformed JSON body: ${err.message}`));
  }
  if (status >= 400 && status < 500) return reply.code(status).send(errorBody(err.code ?? 'BAD_REQUEST', err.message));
  request.log.error({ err }, 'unhandled error');
  return reply.code(500).send(errorBody('INTERNAL_ERROR', 'Internal server error'));
}

/** Builds the whole server: store, security, flows, runtime, monitor and admin, wired together. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const logger = createLogger(config.logLevel, options.logStream);
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Flow endpoints log one line per finished message themselves; probes are noise.
    logController: new LogController({ disableRequestLogging: (request) => !isAdminPath(request.url) }),
    trustProxy: true,
    bodyLimit: 10 * 1024 * 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const store = await openStore(config);
  app.decorate('config', config);
  app.decorate('store', store);
  app.addHook('onClose', async () => {
    await store.close();
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`));
  });

  let ready = false;
  app.get('/health', async () => ({ status: 'UP' }));
  app.get('/ready', async (_request, reply) => {
    if (!ready) return reply.code(503).send({ status: 'STARTING' });
    return { status: 'READY' };
  });

  await app.ready();
  ready = true;
  return app;
}

import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HttpError } from '../errors.ts';
import type { Flow } from '../flows/registry.ts';
import { requireRole } from '../security/index.ts';
import { ErrorResponse } from './schemas.ts';

const Problem = Type.Object({ file: Type.String(), pointer: Type.String(), message: Type.String() });

const FlowView = Type.Object({
  id: Type.String(),
  file: Type.String(),
  description: Type.Optional(Type.String()),
  endpoint: Type.Optional(Type.String()),
  method: Type.Optional(Type.String()),
  role: Type.Optional(Type.String()),
  status: Type.Union([Type.Literal('deployed'), Type.Literal('error')]),
  steps: Type.Array(Type.Object({ name: Type.String(), kind: Type.String() })),
  error: Type.Optional(Problem),
  /** What a deployed flow's checks found likely wrong but not wrong (as `iflow check` prints them as WARN). */
  warnings: Type.Optional(Type.Array(Problem)),
});

function view(flow: Flow) {
  const { runtime: _runtime, otherErrors: _otherErrors, ...shown } = flow;
  return shown;
}

/** /api/v1/flows: every flow with its endpoint, steps, deploy error and warnings (admin and monitor). */
export const flowsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', requireRole('monitor'));
  app.get('/api/v1/flows', { schema: { response: { 200: Type.Array(FlowView) } } }, async () => app.flows.flows.map(view));
  app.get(
    '/api/v1/flows/:id',
    { schema: { params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: FlowView, 404: ErrorResponse } } },
    async (request) => {
      const flow = app.flows.get(request.params.id);
      if (!flow) throw new HttpError(404, 'NOT_FOUND', `No flow "${request.params.id}"`);
      return view(flow);
    },
  );
};

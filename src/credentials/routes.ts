import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { HttpError } from '../errors.ts';
import { requireRole } from '../security/index.ts';
import { ErrorResponse } from '../admin/schemas.ts';
import type { Authorization, CallbackOutcome } from './authorization.ts';
import { normalizeInput, toView } from './model.ts';
import type { AuthorizationCodeClients } from './oauth-client.ts';
import { sendPage } from './pages.ts';
import { identityOf } from './providers.ts';
import { CredentialInput, CredentialView, NameParams } from './schemas.ts';
import type { TokenService } from './token-service.ts';
import { CALLBACK_PATH, SHORT_CALLBACK_PATH, authorizePath, isFailingStatus, type Credential, type LastError } from './types.ts';
import type { CredentialVault } from './vault.ts';

export interface CredentialRoutesOptions {
  vault: CredentialVault;
  clients: AuthorizationCodeClients;
  tokens: TokenService;
  authorization: Authorization;
}

/** After an update: tokens bound to old client/endpoints/scope go; a failing status is lifted. */
function applyUpdate(latest: Credential, next: Credential): Credential {
  if (next.type === 'basic') return next;
  if (identityOf(next) !== identityOf(latest)) {
    return {
      ...next,
      secrets: { ...next.secrets, accessToken: undefined, refreshToken: undefined, tokenType: undefined },
      state: { status: 'unauthorized' },
    };
  }
  if (isFailingStatus(latest.state.status)) {
    // "Until an admin updates or re-authorizes it": the next token request tries again.
    const canTry = next.type === 'oauth2-client-credentials' ? latest.secrets.accessToken !== undefined : latest.secrets.refreshToken !== undefined;
    return { ...next, state: { ...next.state, status: canTry ? 'authorized' : 'unauthorized', lastError: undefined } };
  }
  return next;
}

/** /api/v1/credentials: the admin manages security material; secrets are write-only. */
export const credentialAdminRoutes: FastifyPluginAsyncTypebox<CredentialRoutesOptions> = async (app, { vault, clients, tokens, authorization }) => {
  app.addHook('onRequest', requireRole('admin'));
  const view = (credential: Credential) => toView(credential, app.config.publicUrl);
  const changed = (name: string) => {
    tokens.forget(name);
    clients.drop(name);
  };
  const notFound = (name: string) => new HttpError(404, 'NOT_FOUND', `No credential "${name}"`);

  app.get('/api/v1/credentials', { schema: { response: { 200: Type.Array(CredentialView) } } }, async () => (await vault.list()).map(view));

  app.get('/api/v1/credentials/:name', { schema: { params: NameParams, response: { 200: CredentialView, 404: ErrorResponse } } }, async (request) => {
    const credential = await vault.get(request.params.name);
    if (!credential) throw notFound(request.params.name);
    return view(credential);
  });

  app.post('/api/v1/credentials', { schema: { body: CredentialInput, response: { 201: CredentialView, 400: ErrorResponse, 409: ErrorResponse } } }, async (request, reply) => {
    const { name } = request.body;
    if (name === undefined) throw new HttpError(400, 'BAD_REQUEST', 'Invalid credential: name is required');
    const { settings, secrets } = normalizeInput(request.body);
    const now = new Date().toISOString();
    const draft = { name, type: request.body.type, settings, secrets, state: request.body.type === 'basic' ? {} : { status: 'unauthorized' as const }, createdAt: now, updatedAt: now };
    if (!(await vault.create(draft))) throw new HttpError(409, 'CONFLICT', `Credential "${name}" exists already`);
    changed(name);
    request.log.info({ credential: name, type: draft.type, by: request.user?.name }, 'credential created');
    return reply.code(201).send(view({ ...draft, version: 1 }));
  });

  app.put(
    '/api/v1/credentials/:name',
    { schema: { params: NameParams, body: CredentialInput, response: { 200: CredentialView, 400: ErrorResponse, 404: ErrorResponse } } },
    async (request) => {
      const { name } = request.params;
      if (request.body.name !== undefined && request.body.name !== name) throw new HttpError(400, 'BAD_REQUEST', `The body names "${request.body.name}" but the path "${name}": credentials cannot be renamed`);
      const existing = await vault.get(name);
      if (!existing) throw notFound(name);
      if (existing.type !== request.body.type) {
        throw new HttpError(400, 'BAD_REQUEST', `Credential "${name}" is of type ${existing.type}; its type cannot be changed (delete it and create a new one)`);
      }
      const result = await vault.mutate(name, (latest) => {
        if (latest.type !== request.body.type) return undefined;
        const { settings, secrets } = normalizeInput(request.body, latest);
        return applyUpdate(latest, { ...latest, settings, secrets: { ...latest.secrets, ...secrets } });
      });
      if (!result) throw notFound(name);
      if (!result.written) throw new HttpError(409, 'CONFLICT', `Credential "${name}" changed type meanwhile`);
      changed(name);
      request.log.info({ credential: name, type: result.credential.type, status: result.credential.state.status, by: request.user?.name }, 'credential updated');
      return view(result.credential);
    },
  );

  app.delete('/api/v1/credentials/:name', { schema: { params: NameParams, response: { 204: Type.Null(), 404: ErrorResponse } } }, async (request, reply) => {
    const { name } = request.params;
    if (!(await vault.repository.delete(name))) throw notFound(name);
    changed(name);
    request.log.info({ credential: name, by: request.user?.name }, 'credential deleted');
    return reply.code(204).send(null);
  });

  // No automatic HEAD route: a HEAD must not start an authorization.
  app.get('/api/v1/credentials/:name/authorize', { schema: { params: NameParams }, exposeHeadRoute: false }, async (request, reply) => {
    const url = await authorization.start(request.params.name);
    return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(url, 302);
  });
};

function flatQuery(query: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string') out[key] = first;
  }
  return out;
}

function outcomePage(reply: FastifyReply, outcome: CallbackOutcome): FastifyReply {
  const home = { href: '/', text: 'Back to iflow' };
  const again = (name: string) => ({ href: authorizePath(name), text: `Authorize "${name}" again` });
  switch (outcome.kind) {
    case 'authorized':
      return sendPage(reply, 200, {
        tone: 'ok',
        title: `Credential ${outcome.credential} is authorized${outcome.user ? ` as ${outcome.user}` : ''}`,
        paragraphs: [
          `Credential "${outcome.credential}" is authorized${outcome.user ? ` as ${outcome.user}` : ''}. Its tokens are stored encrypted and refresh by themselves; the current access token expires at ${outcome.expiresAt}.`,
          'You can close this page.',
        ],
        links: [home],
      });
    case 'bad-state': {
      const why = {
        missing: 'The request has no state parameter, so it cannot be matched to an authorization started in iflow.',
        unknown: 'The state is unknown or was already used: an authorization can be completed once.',
        expired: 'The authorization took longer than 10 minutes and expired.',
        unreadable: 'The authorization cannot be read with the current master key.',
      }[outcome.reason];
      return sendPage(reply, 400, {
        tone: 'error',
        title: 'Authorization not accepted',
        paragraphs: [why, 'Nothing was stored. Start the authorization again from the credential in iflow.'],
        links: [home],
      });
    }
    case 'declined':
      return sendPage(reply, 400, {
        tone: 'error',
        title: `Credential ${outcome.credential} was not authorized`,
        paragraphs: [
          outcome.error === 'access_denied'
            ? 'The sign-in was cancelled or consent was declined at the authorization server.'
            : `The authorization server answered with the error "${outcome.error}".`,
          'The credential is unchanged.',
        ],
        details: outcome.description ? `${outcome.error}: ${outcome.description}` : outcome.error,
        links: [again(outcome.credential), home],
      });
    case 'bad-request':
      return sendPage(reply, 400, { tone: 'error', title: 'Authorization not completed', paragraphs: [outcome.message, 'Nothing was stored.'], links: [home] });
    case 'changed':
      return sendPage(reply, 409, {
        tone: 'error',
        title: `Credential ${outcome.credential} changed during the authorization`,
        paragraphs: ['Its client, endpoints or scope were changed (or it was deleted and created again) while you signed in, so this authorization was discarded and nothing was stored. Authorize it again.'],
        links: [again(outcome.credential), home],
      });
    case 'token-unavailable':
      return sendPage(reply, 502, {
        tone: 'error',
        title: `Credential ${outcome.credential} was not authorized`,
        paragraphs: ['The token endpoint did not answer usefully (this is usually temporary). The credential is unchanged; try again in a moment.'],
        details: describe(outcome.lastError),
        links: [again(outcome.credential), home],
      });
    case 'token-error': {
      const todo = {
        'reauthorization-required': 'Sign in again: authorize the credential once more.',
        'consent-required': 'The user or a tenant administrator must consent to the requested permissions, then authorize again.',
        misconfigured: 'Fix the credential (client id, client secret, redirect URI registered at the authorization server, scope), then authorize again.',
        blocked: 'A policy of the authorization server (Conditional Access, disabled or locked user) refuses tokens; resolve it, then authorize again.',
        unauthorized: 'The code could not be redeemed (expired, used already, or from another sign-in): authorize again.',
      }[outcome.status];
      return sendPage(reply, 400, {
        tone: 'error',
        title: `Credential ${outcome.credential} was not authorized`,
        paragraphs: outcome.kept
          ? [`The token endpoint refused the authorization code. The credential keeps its earlier authorization (status "authorized"): messages go on using it.`, `To authorize it anew: ${todo}`]
          : [`The token endpoint refused the authorization code; the credential's status ${outcome.status === 'unauthorized' ? 'stays' : 'is now'} "${outcome.status}".`, todo],
        details: describe(outcome.lastError),
        links: [again(outcome.credential), home],
      });
    }
  }
}

function describe(lastError: LastError): string {
  return [
    `error: ${lastError.error}`,
    lastError.errorCodes.length ? `codes: ${lastError.errorCodes.map((c) => `AADSTS${c}`).join(', ')}` : undefined,
    lastError.httpStatus ? `HTTP status: ${lastError.httpStatus}` : undefined,
    lastError.description ? `description: ${lastError.description}` : undefined,
    lastError.traceId ? `trace id: ${lastError.traceId}` : undefined,
    lastError.correlationId ? `correlation id: ${lastError.correlationId}` : undefined,
  ]
    .filter(Boolean)
    .join('\n');
}

/** The redirect URI: no Basic auth (the browser comes back from the authorization server; the state is the proof). */
export const credentialCallbackRoutes: FastifyPluginAsyncTypebox<{ authorization: Authorization }> = async (app, { authorization }) => {
  for (const path of [CALLBACK_PATH, SHORT_CALLBACK_PATH]) {
    // No automatic HEAD route: a prefetching HEAD must not consume the state and the code.
    app.get(path, { exposeHeadRoute: false }, async (request, reply) => outcomePage(reply, await authorization.callback(flatQuery(request.query))));
  }
};

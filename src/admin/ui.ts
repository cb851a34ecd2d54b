import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireRole } from '../security/index.ts';
import { escapeHtml, htmlDocument, sendHtml } from './html.ts';
import { formatProblem, type FlowProblem } from '../flows/errors.ts';

const CSS =
  'h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}table{border-collapse:collapse;width:100%;font-size:.9rem}' +
  'th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}th{background:#f6f8fa}' +
  '.ok{color:#1a7f37}.bad{color:#b42318}.muted{color:#656d76}';

type Row = Record<string, unknown>;

const text = (value: unknown) => escapeHtml(value === undefined || value === null ? '' : String(value));
const GOOD = new Set(['deployed', 'authorized', 'COMPLETED']);
const badge = (value: unknown) => `<span class="${GOOD.has(String(value)) ? 'ok' : 'bad'}">${text(value)}</span>`;

function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${escapeHtml(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/**
 * The admin web UI at `/`: flows, credentials (with their Authorize links) and the latest messages,
 * rendered on the server from the admin API itself (same roles, same views, nothing secret), no script.
 */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  /** Reads the admin API as the signed-in user; undefined when that user may not see it. */
  async function read(request: FastifyRequest, url: string): Promise<unknown> {
    const response = await app.inject({ method: 'GET', url, headers: { authorization: request.headers.authorization ?? '' } });
    return response.statusCode === 200 ? response.json() : undefined;
  }

  app.get('/', { onRequest: requireRole('monitor') }, async (request, reply) => {
    const [flows, credentials, logs] = await Promise.all([
      read(request, '/api/v1/flows') as Promise<Row[] | undefined>,
      read(request, '/api/v1/credentials') as Promise<Row[] | undefined>,
      read(request, '/api/v1/MessageProcessingLogs?$top=20&$orderby=LogStart%20desc') as Promise<{ d: { results: Row[] } } | undefined>,
    ]);
    const isAdmin = request.user?.roles.includes('admin') ?? false;

    const flowRows = (flows ?? []).map((f) => [
      text(f.id),
      `${text(f.method)} ${text(f.endpoint)}`,
      badge(f.status),
      text(((f.steps as Row[]) ?? []).map((s) => `${s.name} (${s.kind})`).join(' → ')),
      [f.error as FlowProblem | undefined, ...((f.warnings as FlowProblem[] | undefined) ?? [])]
        .filter((problem) => problem !== undefined)
        .map((problem, index) => text(`${index === 0 && f.error ? '' : 'warning: '}${formatProblem(problem)}`))
        .join('<br>'),
    ]);
    const credentialRows = (credentials ?? []).map((c) => [
      text(c.name),
      text(c.type),
      c.status === undefined ? '' : badge(c.status),
      text(c.user),
      text(c.expiresAt),
      text([c.lastError ? `${(c.lastError as Row).error} ${((c.lastError as Row).errorCodes as number[] | undefined)?.join(',') ?? ''}` : '', ...((c.warnings as string[]) ?? [])].filter(Boolean).join(' · ')),
      c.type === 'oauth2-authorization-code' ? `<a href="/api/v1/credentials/${encodeURIComponent(String(c.name))}/authorize">Authorize</a>` : '',
    ]);
    const messageRows = (logs?.d.results ?? []).map((m) => [
      text(m.LogStart ? new Date(Number(/\d+/.exec(String(m.LogStart))?.[0])).toISOString() : ''),
      text(m.IntegrationFlowName),
      badge(m.Status),
      text(m.DurationMs),
      text(m.MessageGuid),
      text(m.Error ? `${(m.Error as Row).code}: ${(m.Error as Row).message}` : ''),
    ]);

    const body = `<h1>iflow</h1>
<p class="muted">Signed in as ${text(request.user?.name)}. JSON: <a href="/api/v1/flows">flows</a> · <a href="/api/v1/MessageProcessingLogs?$top=50&amp;$inlinecount=allpages">message logs</a>${isAdmin ? ' · <a href="/api/v1/credentials">credentials</a> · <a href="/api/v1/users">users</a>' : ''} · <a href="/metrics">metrics</a></p>
<h2>Flows</h2>
${table(['flow', 'endpoint', 'status', 'steps', 'deploy error / warnings'], flowRows, 'No flows in the flows dir.')}
<h2>Credentials</h2>
${credentials === undefined ? '<p class="muted">Credentials are shown to administrators.</p>' : table(['name', 'type', 'status', 'user', 'token expires', 'last error / warnings', ''], credentialRows, 'No credentials yet: create one with POST /api/v1/credentials.')}
<h2>Latest messages</h2>
${table(['start', 'flow', 'status', 'ms', 'message id', 'error'], messageRows, 'No messages yet.')}`;
    return sendHtml(reply, 200, htmlDocument('Overview', body, CSS));
  });
}

import type { FastifyReply } from 'fastify';
import { escapeHtml, htmlDocument, sendHtml } from '../admin/html.ts';

export interface Page {
  title: string;
  /** Paragraphs of plain text (escaped here). */
  paragraphs: string[];
  /** Optional preformatted details (escaped here). */
  details?: string;
  links?: { href: string; text: string }[];
  tone: 'ok' | 'error';
}

/**
 * A small self-contained HTML page for the browser that comes back from the authorization server.
 * Everything is escaped; no script runs; the page is never cached and sends no Referer onwards
 * (the URL that led here carried the authorization code).
 */
export function sendPage(reply: FastifyReply, statusCode: number, page: Page): FastifyReply {
  const color = page.tone === 'ok' ? '#1a7f37' : '#b42318';
  const links = (page.links ?? []).map((l) => `<a href="${escapeHtml(l.href)}">${escapeHtml(l.text)}</a>`).join(' · ');
  const body = `<h1>${escapeHtml(page.title)}</h1>
${page.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
${page.details ? `<pre>${escapeHtml(page.details)}</pre>` : ''}
${links ? `<p>${links}</p>` : ''}`;
  return sendHtml(reply, statusCode, htmlDocument(page.title, body, `body{max-width:44rem;margin:3rem auto}h1{font-size:1.4rem;color:${color}}`));
}

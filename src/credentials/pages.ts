import type { FastifyReply } from 'fastify';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

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
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(page.title)} – iflow</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}
h1{font-size:1.4rem;color:${color}}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;white-space:pre-wrap;word-break:break-word;font-size:.85rem}
a{color:#0969da}
</style>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
${page.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
${page.details ? `<pre>${escapeHtml(page.details)}</pre>` : ''}
${links ? `<p>${links}</p>` : ''}
</body>
</html>
`;
  return reply
    .code(statusCode)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    .send(html);
}

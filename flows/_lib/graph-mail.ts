/**
 * Maps iflow's simple mail request to the body of Microsoft Graph's sendMail
 * (POST /v1.0/me/sendMail or /v1.0/users/{id}/sendMail). Shared by the send-mail flows.
 */

type Address = string | { address: string; name?: string };
type Recipients = Address | Address[];

export interface MailRequest {
  to?: Recipients;
  cc?: Recipients;
  bcc?: Recipients;
  replyTo?: Recipients;
  subject?: string;
  text?: string;
  html?: string;
  importance?: 'low' | 'normal' | 'high';
  attachments?: { name: string; contentType?: string; contentBase64: string }[];
  saveToSentItems?: boolean;
  /** A ready Graph message object: passed through as it is. */
  message?: Record<string, unknown>;
}

interface GraphRecipient {
  emailAddress: { address: string; name?: string };
}

function recipients(value: Recipients | undefined): GraphRecipient[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  return list.map((entry) =>
    typeof entry === 'string'
      ? { emailAddress: { address: entry } }
      : { emailAddress: entry.name ? { address: entry.address, name: entry.name } : { address: entry.address } },
  );
}

export function toGraphSendMail(request: MailRequest): { message: Record<string, unknown>; saveToSentItems?: boolean } {
  const saveToSentItems = request.saveToSentItems === undefined ? {} : { saveToSentItems: request.saveToSentItems };
  if (request.message && typeof request.message === 'object') return { message: request.message, ...saveToSentItems };
  const message: Record<string, unknown> = {
    subject: request.subject ?? '',
    body: request.html !== undefined ? { contentType: 'HTML', content: request.html } : { contentType: 'Text', content: request.text ?? '' },
    toRecipients: recipients(request.to) ?? [],
  };
  const optional: [string, GraphRecipient[] | undefined][] = [
    ['ccRecipients', recipients(request.cc)],
    ['bccRecipients', recipients(request.bcc)],
    ['replyTo', recipients(request.replyTo)],
  ];
  for (const [field, list] of optional) if (list) message[field] = list;
  if (request.importance) message.importance = request.importance;
  if (request.attachments?.length) {
    message.attachments = request.attachments.map((a) => ({
      '@odata.type': '#microsoft.graph.fileAttachment',
      name: a.name,
      contentType: a.contentType ?? 'application/octet-stream',
      contentBytes: a.contentBase64,
    }));
  }
  return { message, ...saveToSentItems };
}

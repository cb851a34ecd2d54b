import type { Message, ScriptContext } from 'iflow';
import { toGraphSendMail, type MailRequest } from '../../_lib/graph-mail.ts';

/** Picks the sending mailbox (payload `from`, else SENDER_MAILBOX) and maps the payload to Graph's sendMail. */
export default function processData(message: Message, context: ScriptContext) {
  const request = message.getBodyAsJson<MailRequest & { from?: string }>();
  // The http step encodes it in the address: a mailbox cannot add path segments or parameters.
  message.setProperty('mailbox', request.from ?? context.parameters.SENDER_MAILBOX);
  const { from: _from, ...mail } = request;
  message.setBody(toGraphSendMail(mail));
}

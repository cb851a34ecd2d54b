import type { Message, ScriptContext } from 'iflow';
import { toGraphSendMail, type MailRequest } from '../../_lib/graph-mail.ts';

/** Takes a fresh token of the mail credential from the secure store and maps the payload to Graph's sendMail. */
export default async function processData(message: Message, context: ScriptContext) {
  const token = await context.secureStore.getAccessToken(context.parameters.MAIL_CREDENTIAL);
  message.setHeader('Authorization', `Bearer ${token.accessToken}`);
  message.setBody(toGraphSendMail(message.getBodyAsJson<MailRequest>()));
}

/** What scripts import from 'iflow': the Message and ScriptContext types of the script API. */
export { Message } from './runtime/message.ts';
export type { AccessToken, ScriptContext, SecureStore, UserCredential } from './runtime/context.ts';

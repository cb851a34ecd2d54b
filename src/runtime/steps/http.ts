import { STATUS_CODES } from 'node:http';
import { parseDuration, retryAfterMs } from '../../config/duration.ts';
import { FlowError } from '../../flows/errors.ts';
import type { HttpAuthDefinition, HttpStepDefinition } from '../../flows/schema.ts';
import type { SecurityMaterial } from '../context.ts';
import { MessageFailure, toMessageFailure } from '../errors.ts';
import { compileAddress } from '../address.ts';
import { isConstant, type Expression } from '../expressions.ts';
import { bodyForSending, type Message } from '../message.ts';
import { isSensitiveHeader, redactEchoes, secretsOfHeaderValue } from '../../security/redact.ts';
import { guardSecret, withoutSecrets } from '../secrets.ts';
import { exchange, exchangeTarget, type Answer, type ExchangeTarget } from './exchange.ts';
import type { Execution, StepEnvironment, StepRun } from './types.ts';

const DEFAULT_TIMEOUT_MS = 60_000;
const ERROR_BODY_LIMIT = 512;
const RETRY_AFTER_CAP_MS = 30_000;
/** Hop-by-hop and framing headers never copied from a receiver's response into the message. */
const NOT_COPIED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'te', 'trailer', 'proxy-authenticate', 'set-cookie']);
/** Receiver replies are buffered whole; past this the message fails rather than the process. */
const MAX_RESPONSE_BYTES = 50 * 1024 * 1024;
const RETRIED_STATUSES = new Set([429, 502, 503, 504]);

interface Authorizer {
  /** With `rejected`: a newer header than the one `rejected.receiver` answered 401 to, if there is one to get. */
  header(rejected?: { token: string; receiver: string }): Promise<string>;
  /** The OAuth credential whose tokens can be refreshed and retried once after a 401; none for Basic. */
  refreshableCredential?: string;
}

function authorizer(auth: HttpAuthDefinition | undefined, material: SecurityMaterial): Authorizer | undefined {
  if (!auth) return undefined;
  if ('basic' in auth) {
    return {
      async header() {
        const { user, password } = await material.getUserCredential(auth.basic);
        return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      },
    };
  }
  const name = 'oauth2AuthorizationCode' in auth ? auth.oauth2AuthorizationCode : auth.oauth2ClientCredentials;
  return {
    refreshableCredential: name,
    async header(rejected) {
      const token = await material.getAccessToken(name, rejected ? { rejectedToken: rejected.token, receiver: rejected.receiver } : undefined);
      return `Bearer ${token.accessToken}`;
    },
  };
}

/** A credential's answer, its errors (CredentialError keeps its status and code) as the message's failure. */
async function fromCredentials<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw toMessageFailure(err, 'CREDENTIAL_ERROR');
  }
}

function authorize(auth: Authorizer, rejected?: { token: string; receiver: string }): Promise<string> {
  return fromCredentials(auth.header(rejected));
}

function contentTypeOf(message: Message): string | undefined {
  return message.isJsonBody() ? 'application/json' : message.getHeader('Content-Type');
}

function truncate(text: string): string {
  return text.length > ERROR_BODY_LIMIT ? `${text.slice(0, ERROR_BODY_LIMIT)}…` : text;
}

/**
 * An Authorization this step sends (its `auth:` credential's, or a token renewed after a 401) is the message's
 * secret from then on: a receiver reflecting it in any header or error text must not hand it on to the caller.
 * Parts under 8 characters (a short Basic password alone) are left out: a reply header that merely equals or
 * contains one (`a`, `test`) would be dropped, and a reflection is of the whole value, which is guarded.
 */
function guardAuthorization(execution: Execution, authorization: string): void {
  for (const secret of secretsOfHeaderValue(authorization)) if (secret.length >= 8) guardSecret(execution, secret);
}

function retryDelay(answer: Answer | undefined, fallbackMs: number): number {
  const ms = retryAfterMs(answer?.headers['retry-after']);
  return ms === undefined ? fallbackMs : Math.min(ms, RETRY_AFTER_CAP_MS);
}

/**
 * Request-reply to a receiver through the app's pooled keep-alive dispatcher. The receiver's status,
 * allowed response headers and body become the message; with `throwOnFailure` a non-2xx fails it (502).
 */
export function compileHttpStep(definition: HttpStepDefinition, env: StepEnvironment): StepRun & { receiver?: string } {
  const pointer = `${env.pointer}/http`;
  let address: Expression;
  try {
    address = compileAddress(definition.address);
  } catch (err) {
    throw new FlowError({ file: env.file, pointer: `${pointer}/address`, message: (err as Error).message });
  }
  let receiver: string | undefined;
  let constantTarget: ExchangeTarget | undefined;
  if (isConstant(definition.address)) {
    try {
      const url = new URL(definition.address);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
      receiver = url.host;
      constantTarget = exchangeTarget(url);
    } catch {
      throw new FlowError({ file: env.file, pointer: `${pointer}/address`, message: `address must be an http(s) URL, got "${definition.address}"` });
    }
  }
  const method = definition.method ?? 'POST';
  const timeoutMs = parseDuration(definition.timeout ?? DEFAULT_TIMEOUT_MS);
  const throwOnFailure = definition.throwOnFailure ?? true;
  /** [name as configured, lower case]: the lower-case key is made once, not per message. */
  const requestHeaders = (definition.requestHeaders ?? []).map((name) => [name, name.toLowerCase()] as const);
  const responseHeaders = definition.responseHeaders ? new Set(definition.responseHeaders.map((h) => h.toLowerCase())) : undefined;
  definition.responseHeaders?.forEach((name, index) => {
    const why = NOT_COPIED.has(name.toLowerCase())
      ? 'is never copied from a receiver (framing, or a cookie for iflow itself)'
      : isSensitiveHeader(name)
        ? 'is named like a credential: later steps can read it, but it is never replied to the caller'
        : undefined;
    if (why) env.warn({ file: env.file, pointer: `${pointer}/responseHeaders/${index}`, message: `${name} ${why}` });
  });
  const attempts = 1 + (definition.retry?.attempts ?? 0);
  const retryDelayMs = parseDuration(definition.retry?.delay ?? 1000);
  const auth = authorizer(definition.auth, env.securityMaterial);
  const dispatcher = env.dispatcher;
  const sendsBody = method !== 'GET' && method !== 'DELETE';

  /** The receiver URL for this message: fixed at deploy, or built from its expressions. */
  function targetOf(message: Message): ExchangeTarget {
    if (constantTarget) return constantTarget;
    const url = address(message);
    try {
      const target = new URL(url);
      if (target.protocol === 'http:' || target.protocol === 'https:') return exchangeTarget(target);
    } catch {
      // reported below
    }
    throw new MessageFailure('RECEIVER_ADDRESS_INVALID', `receiver address "${truncate(url)}" is not an http(s) URL`, 500);
  }

  /**
   * A newer Authorization for a Bearer token a receiver refused with 401, and its credential: from the step's own
   * refreshable `auth:`, or, without one, for a token the secure store gave this message's script. Undefined when
   * there is none to get.
   */
  async function renewedAuthorization(sent: string | undefined, receiver: string, execution: Execution): Promise<{ authorization: string; credential: string } | undefined> {
    const rejected = sent?.startsWith('Bearer ') ? sent.slice('Bearer '.length) : undefined;
    if (rejected === undefined) return undefined;
    let authorization: string;
    let credential: string | undefined;
    if (auth) {
      credential = auth.refreshableCredential;
      if (credential === undefined) return undefined;
      authorization = await authorize(auth, { token: rejected, receiver });
    } else {
      credential = execution.issuedTokens?.get(rejected);
      if (credential === undefined) return undefined;
      const token = (await fromCredentials(env.securityMaterial.getAccessToken(credential, { rejectedToken: rejected, receiver }))).accessToken;
      execution.issuedTokens!.set(token, credential);
      authorization = `Bearer ${token}`;
    }
    // The token service found no newer token (or renewing is paused): the 401 stands.
    return authorization === sent ? undefined : { authorization, credential };
  }

  const run: StepRun = async (message, execution) => {
    const target = targetOf(message);
    // Keyed by lower-case name, so the computed Content-Type and Authorization replace copied ones.
    const headers: Record<string, string> = {};
    for (const [name, lower] of requestHeaders) {
      const value = message.getHeader(name);
      if (value !== undefined) headers[lower] = value;
    }
    const body = sendsBody ? bodyForSending(message) : undefined;
    if (body !== undefined) {
      const type = contentTypeOf(message);
      if (type) headers['content-type'] = type;
    }
    if (auth) {
      headers.authorization = await authorize(auth);
      guardAuthorization(execution, headers.authorization);
    }

    let answer: Answer | undefined;
    let refreshed = false;
    /** The credential whose token was renewed after a 401, if one was. */
    let renewedFor: string | undefined;
    /** How many times the request went out, for failure texts: a retried request may have reached the receiver more than once. */
    let sent = 0;
    for (let attempt = 1; ; attempt++) {
      let failure: MessageFailure | undefined;
      sent++;
      if (sent > 1) execution.attempts = sent;
      // Only once a request goes out is this host the message's receiver (not when the credential failed first).
      execution.receiver = target.host;
      try {
        answer = await exchange(dispatcher, { target, method, headers, body, timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES });
      } catch (err) {
        failure = err as MessageFailure;
        answer = undefined;
      }
      if (answer?.statusCode === 401 && !refreshed) {
        // The token was refused (revoked, or expired early): renewed once and sent once more, whether the step's
        // own auth: got it or a script took it from the secure store.
        refreshed = true;
        const renewed = await renewedAuthorization(headers.authorization, target.host, execution);
        if (renewed !== undefined) {
          headers.authorization = renewed.authorization;
          guardAuthorization(execution, renewed.authorization);
          renewedFor = renewed.credential;
          // A script's token lives in the message: later steps send the renewed one too.
          if (!auth) message.setHeader('Authorization', renewed.authorization);
          attempt--;
          continue;
        }
      }
      const retriable = failure ? failure.code === 'RECEIVER_UNREACHABLE' || failure.code === 'RECEIVER_TIMEOUT' : RETRIED_STATUSES.has(answer!.statusCode);
      if (!retriable || attempt >= attempts) {
        if (failure) throw sent > 1 ? failure.withMessage(`${failure.message} (${sent} attempts)`) : failure;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, retryDelay(answer, retryDelayMs)));
    }
    // Renewing did not help (the last answer, after any retries, is a 401 still): the token service stops renewing
    // this credential's tokens for this receiver's 401s a while.
    if (renewedFor !== undefined && answer?.statusCode === 401) env.securityMaterial.renewedTokenRefused(renewedFor, target.host);

    const { statusCode, headers: received, body: responseBody } = answer!;
    if (throwOnFailure && (statusCode < 200 || statusCode >= 300)) {
      // A receiver may echo what it was sent: never pass a credential on to the caller, the log or the store.
      const sentSecrets = Object.entries(headers).flatMap(([name, value]) => (isSensitiveHeader(name) ? secretsOfHeaderValue(value) : []));
      // Cut first (a body may be megabytes); what the steps handed out goes too, whatever header or body carried it.
      const text = truncate(withoutSecrets(redactEchoes(responseBody.toString('utf8', 0, 4 * ERROR_BODY_LIMIT), sentSecrets), execution.secretSets));
      const requestId = received['request-id'];
      throw new MessageFailure(
        'RECEIVER_ERROR',
        `receiver ${target.host} answered ${statusCode} ${STATUS_CODES[statusCode] ?? ''}${sent > 1 ? ` (${sent} attempts)` : ''}${text ? `: ${text}` : ''}`.trim(),
        502,
        { receiverStatus: statusCode, requestId: typeof requestId === 'string' ? requestId : undefined },
      );
    }
    message.status = statusCode;
    for (const name in received) {
      const value = received[name];
      const lower = name.toLowerCase();
      // Content-Type describes the body, which is the receiver's now: it comes along, listed or not.
      if (value === undefined || NOT_COPIED.has(lower) || (responseHeaders && !responseHeaders.has(lower) && lower !== 'content-type')) continue;
      message.setHeader(name, Array.isArray(value) ? value.join(', ') : value);
    }
    if (!received['content-type']) message.removeHeader('Content-Type');
    message.setBody(responseBody);
  };
  return Object.assign(run, { receiver });
}

import { readFile } from 'node:fs/promises';
import { resolve, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FlowError } from '../../flows/errors.ts';
import { notAParameter } from '../../flows/parameters.ts';
import { secureStoreFor, type ScriptContext, type SecureStore, type SecurityMaterial } from '../context.ts';
import { redactCredentialsInText } from '../../security/redact.ts';
import { RecentSecrets, guardSecrets } from '../secrets.ts';
import { MessageFailure, toMessageFailure } from '../errors.ts';
import { Message } from '../message.ts';
import type { Execution, StepEnvironment, StepRun } from './types.ts';

type ProcessData = (message: Message, context: ScriptContext) => unknown;

/** At most this many secrets handed to one step's script are remembered for cleaning its error texts. */
const HANDED_OUT_MAX = 1000;
/** An access token handed to a script stays guarded this long after it expires (a script may still hold it). */
const AFTER_EXPIRY_MS = 24 * 60 * 60 * 1000;

/** "file.ts:12" from the first stack frame inside the script, so a failure points at its line. */
function scriptLocation(err: unknown, scriptPaths: string[], shownName: string): string {
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : '';
  for (const line of stack.split('\n')) {
    for (const path of scriptPaths) {
      // Frames name the file by path or by file: URL, depending on the loader.
      const at = line.indexOf(path);
      const position = at >= 0 ? /^:(\d+)/.exec(line.slice(at + path.length)) : null;
      if (position) return `${shownName}:${position[1]}`;
    }
  }
  return shownName;
}

/** The default export, also when a CommonJS-compiled script nests it (`module.exports.default`). */
function pickProcessData(module: { default?: unknown; processData?: unknown }): ProcessData | undefined {
  if (typeof module.default === 'function') return module.default as ProcessData;
  if (typeof module.processData === 'function') return module.processData as ProcessData;
  const nested = module.default as { default?: unknown; processData?: unknown } | undefined;
  if (nested && typeof nested === 'object') return pickProcessData(nested);
  return undefined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** At most this many undeclared parameters are reported per script: the first ones say enough. */
const MAX_PARAMETER_WARNINGS = 10;

/** Comments and string literals (templates too), blanked out with their line breaks kept, so positions stay. */
const COMMENTS_AND_STRINGS = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g;

/** A template literal with its text blanked and its `${…}` expressions kept (they are code). */
function templateCode(template: string): string {
  let depth = 0;
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const char = template[i];
    if (depth === 0 && char === '$' && template[i + 1] === '{') {
      depth = 1;
      out += '  ';
      i++;
    } else if (depth > 0) {
      if (char === '{') depth++;
      else if (char === '}') depth--;
      out += depth === 0 ? ' ' : char;
    } else out += char === '\n' ? '\n' : ' ';
  }
  return out;
}

/** Where an entry point's parameter list opens: `export default [async] [function [name]](`, or `function processData(`. */
const ENTRY_POINT = /\bexport\s+default\s+(?:async\s+)?(?:function\b\s*\*?\s*(?:[A-Za-z_$][\w$]*)?\s*)?(?:<[^<>()]{0,200}>\s*)?\(|\bfunction\s+processData\s*(?:<[^<>()]{0,200}>\s*)?\(/g;

/**
 * The names entry points give their second parameter (the context): the identifier after the first comma at the
 * top level of each parameter list, whatever the first parameter's type or default holds (`M<A, B>`, `= {}`).
 */
function entryContextNames(code: string): string[] {
  const names: string[] = [];
  for (const match of code.matchAll(ENTRY_POINT)) {
    let depth = 0;
    for (let i = match.index + match[0].length; i < code.length; i++) {
      const char = code[i];
      if (char === '(' || char === '[' || char === '{' || char === '<') depth++;
      else if (char === ')' || char === ']' || char === '}' || (char === '>' && code[i - 1] !== '=')) {
        if (depth === 0) break;
        depth--;
      } else if (char === ',' && depth === 0) {
        const name = /^\s*([A-Za-z_$][\w$]*)/.exec(code.slice(i + 1, i + 200))?.[1];
        if (name) names.push(name);
        break;
      }
    }
  }
  return names;
}

/**
 * Each `context.parameters.NAME` in a script's code (not its comments or strings) whose NAME the flow does not
 * declare: at run time it is undefined, and a message goes to "undefined/…". `context` is also read under the
 * name the entry point gives its second parameter (`ctx`, say). A warning, not an error: the text is not parsed,
 * so a variable of the script's own with that name would be read the same way.
 */
function undeclaredParameters(source: string, parameters: Readonly<Record<string, string>>): { read: string; line: number }[] {
  const code = source.replace(COMMENTS_AND_STRINGS, (text) => (text.startsWith('`') ? templateCode(text) : text.replace(/[^\n]/g, ' ')));
  const contexts = new Set(['context', ...entryContextNames(code)]);
  const found = new Map<string, number>();
  // Lines counted as the matches go (in order), not from the start for each.
  let line = 1;
  let counted = 0;
  // `.NAME`, or `['NAME']` whose string (blanked in `code`) is read from the source.
  const reads = new RegExp(`(?<![\\w$])(${[...contexts].map((name) => name.replaceAll('$', '\\$')).join('|')})\\s*\\.\\s*parameters\\s*(?:\\.\\s*([A-Za-z_$][\\w$]*)|\\[(\\s+)\\])`, 'g');
  for (const match of code.matchAll(reads)) {
    const quoted = match[3] === undefined ? undefined : /^\s*(['"])([^'"\n]*)\1\s*$/.exec(source.slice(match.index + match[0].length - match[3].length - 1, match.index + match[0].length - 1));
    const name = match[2] ?? quoted?.[2];
    if (name === undefined || Object.hasOwn(parameters, name) || name in Object.prototype || found.has(`${match[1]}.parameters.${name}`)) continue;
    for (; counted < match.index; counted++) if (code.charCodeAt(counted) === 10) line++;
    found.set(`${match[1]}.parameters.${name}`, line);
    if (found.size >= MAX_PARAMETER_WARNINGS) break;
  }
  return [...found].map(([read, at]) => ({ read, line: at }));
}

/** Loads the script module once at deploy; each message calls its default export `processData`. */
export async function compileScriptStep(file: string, timeoutMs: number, env: StepEnvironment): Promise<StepRun> {
  const path = resolve(env.flowDir, file);
  const shownName = relative(resolve(env.flowDir, '..'), path);
  const source = await readFile(path, 'utf8').catch(() => {
    throw new FlowError({ file: env.file, pointer: `${env.pointer}/script`, message: `script file not found: ${file}` });
  });
  for (const unknown of undeclaredParameters(source, env.parameters)) {
    env.warn({ file: shownName, pointer: '', message: notAParameter(`${unknown.read} at line ${unknown.line}`, env.parameters) });
  }
  const url = pathToFileURL(path).href;
  let module: { default?: unknown; processData?: unknown };
  try {
    module = (await import(url)) as typeof module;
  } catch (err) {
    const message = (err as Error).message;
    // ESM-only syntax in a folder Node treats as CommonJS: say how to make it an ES module.
    const hint = /"cjs" output format/.test(message) ? ' (this folder is CommonJS to Node: add a package.json of {"type": "module"} to the flows folder, or name the script .mts)' : '';
    throw new FlowError({ file: shownName, pointer: '', message: `script does not load: ${message}${hint}` });
  }
  const processData = pickProcessData(module);
  if (typeof processData !== 'function') {
    throw new FlowError({ file: shownName, pointer: '', message: 'a script must export default function processData(message, context)' });
  }
  const parameters = env.parameters;
  // Every secret the secure store gave this step's script, on any message: a script may keep a token in a
  // module-level variable and put it in a later message's header or error. Bounded in count and age.
  const recent = new RecentSecrets(HANDED_OUT_MAX);
  const handedOut = recent.secrets;
  const rememberSecret = (secret: string, execution: Execution, expiresAtMs?: number) => {
    recent.add(secret, expiresAtMs === undefined ? Infinity : expiresAtMs + AFTER_EXPIRY_MS);
    guardSecrets(execution, handedOut);
  };
  const material = env.securityMaterial;

  /** What the script returned: the message changed in place (nothing) or a message to take over. */
  const takeOver = (message: Message, result: unknown): void => {
    if (result instanceof Message) message.assign(result);
    else if (result !== undefined && result !== null) {
      throw new MessageFailure('SCRIPT_ERROR', `script ${shownName} returned something that is not a message: change the message in place or return it`);
    }
  };
  /**
   * A throw or rejection from the script, as the message's failure (with the script's file and line). Its text
   * goes to the caller, the log and the message log: anything written like an Authorization value is taken out of
   * it here; the secrets the secure store gave the scripts, by the pipeline (runtime/secrets.ts), for every step.
   */
  const failure = (err: unknown): MessageFailure => {
    const converted = toMessageFailure(err, 'SCRIPT_ERROR');
    const text = redactCredentialsInText(converted.message);
    if (err instanceof MessageFailure || converted.code !== 'SCRIPT_ERROR') {
      return text === converted.message ? converted : converted.withMessage(text);
    }
    return new MessageFailure('SCRIPT_ERROR', `script ${scriptLocation(err, [path, url], shownName)} failed: ${text}`);
  };
  const timedOut = () => new MessageFailure('SCRIPT_TIMEOUT', `script ${shownName} did not finish within ${timeoutMs} ms`);

  // Not an async function: a synchronous script (most are) completes the step without a promise.
  return (message, execution) => {
    // What the script got on earlier messages it may still hold (a cached token): this message guards it too.
    if (handedOut.size > 0) {
      recent.prune();
      guardSecrets(execution, handedOut);
    }
    let result: unknown;
    try {
      result = processData(message, new Context(material, rememberSecret, parameters, execution));
    } catch (err) {
      throw failure(err);
    }
    // Only a script that returns a promise can outlive the step: a synchronous one needs no timer.
    if (isThenable(result)) {
      return withTimeout(Promise.resolve(result), timeoutMs, timedOut).then(
        (value) => takeOver(message, value),
        (err: unknown) => {
          throw failure(err);
        },
      );
    }
    takeOver(message, result);
  };
}

/** The script's context; a class, so each message gets it without a closure. */
class Context implements ScriptContext {
  #secureStore: SecureStore | undefined;

  constructor(
    private readonly material: SecurityMaterial,
    private readonly rememberSecret: (secret: string, execution: Execution, expiresAtMs?: number) => void,
    readonly parameters: Readonly<Record<string, string>>,
    private readonly execution: Execution,
  ) {}

  /**
   * The secure store for this message, noting what it hands out: for this step's error texts, and for the message
   * (an http step's 401, what receivers echo, the reply's headers); made on first use.
   */
  get secureStore(): SecureStore {
    const { execution } = this;
    this.#secureStore ??= secureStoreFor(this.material, {
      handedOut: (secret, expiresAtMs) => this.rememberSecret(secret, execution, expiresAtMs),
      tokenIssued: (token, credential) => (execution.issuedTokens ??= new Map()).set(token, credential),
    });
    return this.#secureStore;
  }

  get log() {
    return this.execution.log;
  }
}

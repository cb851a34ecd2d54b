import { FlowError } from './errors.ts';

type Scalar = string | number | boolean;
const REFERENCE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const WHOLE_REFERENCE = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/** Escapes a JSON pointer segment (RFC 6901). */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The flow's parameters: defaults from the file, each overridden by IFLOW_PARAM_<NAME> when set. */
export function resolveParameters(declared: Record<string, Scalar> | undefined, overrides: Record<string, string>): Record<string, Scalar> {
  const resolved: Record<string, Scalar> = {};
  for (const [name, value] of Object.entries(declared ?? {})) resolved[name] = overrides[name] ?? value;
  return resolved;
}

/**
 * Replaces `{{NAME}}` in every string of the flow (but the parameters block itself). A string that is
 * exactly one reference takes the parameter's value with its type; otherwise the value is spliced in.
 * A reference to an undeclared parameter is an error naming where it stands.
 */
export function substituteParameters(document: unknown, parameters: Record<string, Scalar>, file: string): unknown {
  const lookup = (name: string, pointer: string): Scalar => {
    if (!Object.hasOwn(parameters, name)) {
      throw new FlowError({ file, pointer, message: `unknown parameter "${name}": declare it under parameters (its default), override it with IFLOW_PARAM_${name}` });
    }
    return parameters[name];
  };
  const walk = (value: unknown, pointer: string): unknown => {
    if (typeof value === 'string') {
      const whole = WHOLE_REFERENCE.exec(value);
      if (whole) return lookup(whole[1], pointer);
      return value.replace(REFERENCE, (_match, name: string) => String(lookup(name, pointer)));
    }
    if (Array.isArray(value)) return value.map((item, index) => walk(item, `${pointer}/${index}`));
    if (value !== null && typeof value === 'object') {
      const result: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        result[key] = pointer === '' && key === 'parameters' ? item : walk(item, `${pointer}/${pointerSegment(key)}`);
      }
      return result;
    }
    return value;
  };
  return walk(document, '');
}

/** How a reference to a parameter the flow does not declare is reported (JSONata, scripts, at deploy and at run time). */
export function notAParameter(reference: string, declared: Readonly<Record<string, unknown>>): string {
  return `${reference} is not a parameter of this flow (declared: ${Object.keys(declared).join(', ') || 'none'})`;
}

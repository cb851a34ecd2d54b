import { FlowError } from '../../flows/errors.ts';
import type { SetStepDefinition } from '../../flows/schema.ts';
import { compileExpression, type Expression } from '../expressions.ts';
import type { Message } from '../message.ts';
import type { StepEnvironment, StepRun } from './types.ts';

type Assignment = (message: Message) => void;

/** A body expression that is the body and nothing else. */
const BODY_ITSELF = /^\$\{\s*(?:in\.)?body\s*\}$/;

/** The content modifier: headers, properties and body set from expressions, top to bottom as written. */
export function compileSetStep(definition: SetStepDefinition, env: StepEnvironment): StepRun {
  const compile = (text: string, pointer: string): Expression => {
    try {
      return compileExpression(text);
    } catch (err) {
      throw new FlowError({ file: env.file, pointer: `${env.pointer}/set${pointer}`, message: (err as Error).message });
    }
  };
  const assignments: Assignment[] = [];
  for (const [group, value] of Object.entries(definition)) {
    if (group === 'body' && typeof value === 'string') {
      const body = compile(value, '/body');
      // `body: ${body}` sets the body to itself: left as it is, it stays JSON (or bytes) and, while it is still
      // the caller's, a later JSON read that fails stays the caller's 400, not the flow's 500.
      if (!BODY_ITSELF.test(value)) assignments.push((m) => m.setBody(body(m)));
    } else if (group === 'headers' || group === 'properties') {
      for (const [name, text] of Object.entries(value as Record<string, string>)) {
        const expression = compile(text, `/${group}/${name}`);
        assignments.push(group === 'headers' ? (m) => m.setHeader(name, expression(m)) : (m) => m.setProperty(name, expression(m)));
      }
    }
  }
  return (message) => {
    for (const assign of assignments) assign(message);
  };
}

/** Why a flow could not be deployed: the file, the JSON pointer into it, and the reason. */
export interface FlowProblem {
  file: string;
  pointer: string;
  message: string;
}

/** The 1-based line and column of `offset` in `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: before.length - before.lastIndexOf('\n') };
}

/** `file at pointer: message`, as logs and `iflow check` show a problem. */
export function formatProblem(problem: FlowProblem): string {
  return `${problem.file}${problem.pointer ? ` at ${problem.pointer}` : ''}: ${problem.message}`;
}

/** Whether a problem is in the flow file's `sender` (its path, headers, schema…). */
export function isAboutSender(problem: FlowProblem): boolean {
  return problem.pointer === '/sender' || problem.pointer.startsWith('/sender/');
}

/** At most this many problems are reported per file. */
const MAX_PROBLEMS = 20;

/** At most MAX_PROBLEMS of a file's problems, and a last line saying how many more there are. */
export function capped(problems: FlowProblem[], file: string): FlowProblem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_PROBLEMS), { file, pointer: '', message: `and ${problems.length - MAX_PROBLEMS} more problems not shown` }];
}

/** A flow that cannot deploy: `problem` first, and any others found in the same pass (all of a file's schema errors). */
export class FlowError extends Error {
  constructor(
    readonly problem: FlowProblem,
    readonly others: FlowProblem[] = [],
  ) {
    super(formatProblem(problem));
    this.name = 'FlowError';
  }
}

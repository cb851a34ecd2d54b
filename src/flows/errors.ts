/** Why a flow could not be deployed: the file, the JSON pointer into it, and the reason. */
export interface FlowProblem {
  file: string;
  pointer: string;
  message: string;
}

export class FlowError extends Error {
  constructor(readonly problem: FlowProblem) {
    super(`${problem.file}${problem.pointer ? ` at ${problem.pointer}` : ''}: ${problem.message}`);
    this.name = 'FlowError';
  }
}

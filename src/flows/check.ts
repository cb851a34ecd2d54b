import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent } from 'undici';
import { loadConfig } from '../config/index.ts';
import type { SecurityMaterial } from '../runtime/context.ts';
import { formatProblem } from './errors.ts';
import { deployFlows } from './registry.ts';

/** Checking compiles flows but never calls out: any use of a credential here is a bug. */
const noSecurityMaterial: SecurityMaterial = {
  getAccessToken: () => Promise.reject(new Error('credentials are not available in iflow check')),
  getUserCredential: () => Promise.reject(new Error('credentials are not available in iflow check')),
  renewedTokenRefused: () => undefined,
};

/** `iflow check [dir]`: validates and compiles every flow, prints each result, exits 1 on any error. */
export async function checkCommand(dir?: string): Promise<number> {
  const config = loadConfig();
  const flowsDir = dir ? resolve(dir) : config.flowsDir;
  const dispatcher = new Agent();
  try {
    let registry: Awaited<ReturnType<typeof deployFlows>>;
    try {
      registry = await deployFlows(flowsDir, config.parameterOverrides, { securityMaterial: noSecurityMaterial, dispatcher });
    } catch (err) {
      // Not a flow's error (those are listed below) but the folder's: a file given, or one that cannot be read.
      console.error(`iflow check: ${(err as Error).message}`);
      return 1;
    }
    if (registry.flows.length === 0) {
      console.error(existsSync(flowsDir) ? `no flows found in ${flowsDir} (one folder per flow, each holding a flow.yaml)` : `the flows folder ${flowsDir} does not exist`);
      return 1;
    }
    for (const flow of registry.flows) {
      if (flow.status === 'deployed') {
        console.log(`ok     ${flow.id}  ${flow.method} ${flow.endpoint}  (${flow.steps.length} ${flow.steps.length === 1 ? 'step' : 'steps'})`);
        for (const warning of flow.warnings ?? []) console.log(`WARN   ${flow.id}  ${formatProblem(warning)}`);
      } else {
        console.log(`ERROR  ${flow.id}  ${formatProblem(flow.error!)}`);
        for (const other of flow.otherErrors ?? []) console.log(`       ${' '.repeat(flow.id.length)}  ${formatProblem(other)}`);
      }
    }
    const failed = registry.errors.length;
    const warned = registry.flows.filter((flow) => flow.warnings).length;
    const warnedNote = warned > 0 ? ` (${warned} with warnings)` : '';
    const flows = (count: number) => `${count} ${count === 1 ? 'flow' : 'flows'}`;
    console.log(failed === 0 ? `${flows(registry.flows.length)} valid${warnedNote}` : `${failed} of ${flows(registry.flows.length)} invalid${warnedNote}`);
    return failed === 0 ? 0 : 1;
  } finally {
    await dispatcher.close();
  }
}

#!/usr/bin/env node
// The `iflow` command. tsx lets the server and the flows' TypeScript scripts load without a build step.
// Both of its hooks, as the `tsx` command registers them: a script in a folder without a package.json of
// "type": "module" is CommonJS to Node, and without the CommonJS hook its import() failed with "Cannot
// require() ES Module … in a cycle".
import { register as registerCommonJs } from 'tsx/cjs/api';
import { register } from 'tsx/esm/api';

register();
registerCommonJs();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// The `iflow` command. tsx lets the server and the flows' TypeScript scripts load without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));

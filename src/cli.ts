/** `iflow start` runs the server; `iflow check [dir]` validates flows and exits non-zero on any error. */
export async function main(argv: string[]): Promise<number> {
  const [command = 'start', ...rest] = argv;
  switch (command) {
    case 'start': {
      const { start } = await import('./main.ts');
      try {
        await start();
      } catch (err) {
        // Startup problems (configuration, master key, store, port) are the operator's to fix: say what, not where.
        console.error(`iflow: cannot start: ${(err as Error).message}`);
        if (process.env.LOG_LEVEL === 'debug') console.error((err as Error).stack);
        return 1;
      }
      return 0;
    }
    case 'check': {
      const { checkCommand } = await import('./flows/check.ts');
      return checkCommand(rest[0]);
    }
    case 'help':
    case '--help':
    case '-h':
      console.log('usage: iflow [start] | iflow check [flows-dir]');
      return 0;
    default:
      console.error(`unknown command "${command}"\nusage: iflow [start] | iflow check [flows-dir]`);
      return 2;
  }
}

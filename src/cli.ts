/** `iflow start` runs the server; `iflow check [dir]` validates flows and exits non-zero on any error. */
export async function main(argv: string[]): Promise<number> {
  const [command = 'start', ...rest] = argv;
  switch (command) {
    case 'start': {
      const { start } = await import('./main.ts');
      await start();
      return 0;
    }
    case 'check': {
      const { checkCommand } = await import('./flows/check.ts');
      return checkCommand(rest[0]);
    }
    case 'help':
    case '--help':
    case '-h':
      console.log('usage: iflow start | iflow check [flows-dir]');
      return 0;
    default:
      console.error(`unknown command "${command}"\nusage: iflow start | iflow check [flows-dir]`);
      return 2;
  }
}

/**
 * Run by fd-destination.test.ts in a child process: writes LINES numbered lines through an FdDestination
 * to FD_TARGET (a file path, or "stdout"), says "written" on stderr and exits at once, so whatever has
 * not been written yet is left to the destination's exit flush.
 */
import { openSync } from 'node:fs';
import { FdDestination } from '../../src/logging/fd-destination.ts';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const target = process.env.FD_TARGET ?? 'stdout';
// Touching process.stdout makes a pipe on fd 1 non-blocking (libuv), as in a server that also prints.
const fd = target === 'stdout' ? (process.stdout.fd ?? 1) : openSync(target, 'w');
const destination = new FdDestination(fd, {
  minLength: env('MIN_LENGTH', 4096),
  flushMs: env('FLUSH_MS', 100),
  maxPending: env('MAX_PENDING', 16 * 1024 * 1024),
  exitRetryMs: 20_000,
});
const pad = 'x'.repeat(env('PAD', 100));
for (let n = 0; n < env('LINES', 1000); n++) destination.write(`{"n":${n},"text":"ü€𝄞 ${pad}"}\n`);
process.stderr.write('written\n');
process.exit(0);

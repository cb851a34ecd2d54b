import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FdDestination } from '../../src/logging/fd-destination.ts';

const fixture = fileURLToPath(new URL('./write-lines.fixture.ts', import.meta.url));

function tempFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-fd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'out.log');
}

/** Runs the fixture; `readAfterWritten` holds back reading its stdout until it has written every line. */
async function runFixture(env: Record<string, string>, options: { readAfterWritten?: boolean } = {}): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  const collect = () => child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  if (!options.readAfterWritten) collect();
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (options.readAfterWritten && stderr.includes('written\n') && child.stdout.listenerCount('data') === 0) collect();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  assert.match(stderr, /written/, `the fixture failed: ${stderr}`);
  return { code, stdout: Buffer.concat(chunks).toString('utf8') };
}

const lineNumbers = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { n?: number; text?: string; droppedLines?: number; msg?: string });

describe('FdDestination', () => {
  test('writes every line in order, UTF-8 intact, a line larger than a chunk included', async (t) => {
    const file = tempFile(t);
    const fd = openSync(file, 'w');
    const destination = new FdDestination(fd, { minLength: 1000 });
    const expected: string[] = [];
    for (let n = 0; n < 5000; n++) {
      const line = `{"n":${n},"text":"${n === 2500 ? 'é'.repeat(200_000) : `ü€𝄞 ${n}`}"}\n`;
      expected.push(line);
      assert.equal(destination.write(line), true);
      // Let some writes finish in between, so chunks are written while others are filled.
      if (n % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise<void>((resolve) => destination.end(resolve));
    assert.equal(readFileSync(file, 'utf8'), expected.join(''));
  });

  test('lines still waiting when the process exits are written by the exit flush', async (t) => {
    const file = tempFile(t);
    // A minimum far above what is written and no timer flush: only the exit flush can write these lines.
    const { code } = await runFixture({ FD_TARGET: file, LINES: '2000', MIN_LENGTH: String(64 * 1024 * 1024), FLUSH_MS: '3600000' });
    assert.equal(code, 0);
    const lines = lineNumbers(readFileSync(file, 'utf8'));
    assert.deepEqual(
      lines.map((line) => line.n),
      Array.from({ length: 2000 }, (_, n) => n),
    );
    assert.equal(lines[1999].text, `ü€𝄞 ${'x'.repeat(100)}`);
  });

  test('a pipe nobody reads for a while (EAGAIN) delays lines but loses none', async () => {
    // 4 MB into a pipe that holds 64 KB: writes meet a full pipe until the reader starts, after the child is done.
    const { code, stdout } = await runFixture({ FD_TARGET: 'stdout', LINES: '20000', PAD: '200' }, { readAfterWritten: true });
    assert.equal(code, 0);
    const numbers = lineNumbers(stdout).map((line) => line.n);
    assert.equal(numbers.length, 20000);
    assert.deepEqual(numbers, Array.from({ length: 20000 }, (_, n) => n));
  });

  test('beyond maxPending lines are dropped, counted and reported, and the rest keep their order', async () => {
    const { code, stdout } = await runFixture({ FD_TARGET: 'stdout', LINES: '20000', PAD: '200', MAX_PENDING: String(256 * 1024) }, { readAfterWritten: true });
    assert.equal(code, 0);
    const lines = lineNumbers(stdout);
    const report = lines.at(-1)!;
    assert.equal(report.msg, 'log lines dropped: the log output was slower than the logging');
    const delivered = lines.slice(0, -1).map((line) => line.n!);
    assert.ok(delivered.length > 0 && delivered.length < 20000, `${delivered.length} lines delivered`);
    assert.ok(
      delivered.every((n, i) => i === 0 || n > delivered[i - 1]),
      'delivered lines keep their order',
    );
    assert.equal(report.droppedLines, 20000 - delivered.length, 'every line is either delivered or counted as dropped');
    assert.ok(stdout.length < 1024 * 1024, `about maxPending (+ what the pipe held) was kept of 4 MB, got ${stdout.length} bytes`);
  });
});

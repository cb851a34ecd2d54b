import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageLogRecord } from '../store/types.ts';

/**
 * Message processing logs a shutdown could not write (the store was down), kept in the data dir as JSON lines
 * (owner-only) until the next start writes them: nothing is lost to an outage at the wrong moment.
 */
export const UNWRITTEN_FILE = 'message-logs-unwritten.jsonl';

/** Appends `records` to the data dir's file, synced to disk; resolves to its path. */
export async function keepUnwritten(dataDir: string, records: readonly MessageLogRecord[]): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, UNWRITTEN_FILE);
  const handle = await open(path, 'a', 0o600);
  try {
    await handle.writeFile(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    await handle.sync();
  } finally {
    await handle.close();
  }
  return path;
}

/** The records kept by earlier shutdowns (none when there is no file); a line that does not parse is counted, not read. */
export async function readUnwritten(dataDir: string): Promise<{ records: MessageLogRecord[]; unreadable: number }> {
  let text: string;
  try {
    text = await readFile(join(dataDir, UNWRITTEN_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], unreadable: 0 };
    throw err;
  }
  const records: MessageLogRecord[] = [];
  let unreadable = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      records.push(JSON.parse(line) as MessageLogRecord);
    } catch {
      // A line cut short by a crash while it was written.
      unreadable++;
    }
  }
  return { records, unreadable };
}

export async function forgetUnwritten(dataDir: string): Promise<void> {
  await rm(join(dataDir, UNWRITTEN_FILE), { force: true });
}

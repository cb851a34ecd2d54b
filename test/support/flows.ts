import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Flow folders by name, each its files by relative path and text. */
export type FlowFiles = Record<string, Record<string, string>>;

/** Writes flow folders into a fresh temp flows dir: `{ folder: { 'flow.yaml': text, 'scripts/a.ts': text } }`. */
export function writeFlows(flows: FlowFiles): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-flows-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const [folder, files] of Object.entries(flows)) {
    for (const [name, text] of Object.entries(files)) {
      const path = join(dir, folder, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Summarizes a V8 .cpuprofile (from `BENCH_PROFILE=<dir> npm run bench`): where the iflow process spends CPU,
 * by package/file and by function (self time), and the inclusive time of iflow's own functions (src/, bench/).
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=30] [requests]
 *
 * With `requests` (how many the process served while profiled: req/s × seconds, as the bench printed), each line
 * also shows µs per request, which compares across two profiles (iflow and raw) of different throughput.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, requestsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top] [requests]');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const requests = requestsArg ? Number(requestsArg) : undefined;
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

/** Where a frame lives: an npm package, a file of iflow, a Node internal module, or V8's pseudo frames. */
function area(url: string, functionName: string): string {
  if (!url) return `(${functionName || 'anonymous'})`.replace(/^\(\((.*)\)\)$/, '($1)');
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const own = /\/(src|bench)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\/(deps\/)?/, 'node:').split('/').slice(0, 2).join('/');
  return url;
}
const label = (node: ProfileNode) => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || '(anonymous)'}  ${area(url, functionName)}${url ? `:${lineNumber + 1}` : ''}`;
};

const selfByArea = new Map<string, number>();
const selfByFunction = new Map<string, number>();
const inclusiveOwn = new Map<string, number>();
const inclusiveArea = new Map<string, number>();
let total = 0;
let idle = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const us = profile.timeDeltas[i] ?? 0;
  const node = byId.get(profile.samples[i])!;
  if (node.callFrame.functionName === '(idle)') {
    idle += us;
    continue;
  }
  total += us;
  const a = area(node.callFrame.url, node.callFrame.functionName);
  selfByArea.set(a, (selfByArea.get(a) ?? 0) + us);
  selfByFunction.set(label(node), (selfByFunction.get(label(node)) ?? 0) + us);
  const seen = new Set<string>();
  const seenArea = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id)!;
    const frameArea = area(frame.callFrame.url, frame.callFrame.functionName);
    if (!seenArea.has(frameArea)) {
      seenArea.add(frameArea);
      inclusiveArea.set(frameArea, (inclusiveArea.get(frameArea) ?? 0) + us);
    }
    if (!/^(src|bench)\//.test(frameArea)) continue;
    const key = label(frame);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusiveOwn.set(key, (inclusiveOwn.get(key) ?? 0) + us);
  }
}

const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%${requests ? `  ${(us / requests).toFixed(1).padStart(6)} µs/req` : ''}`;
const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
};
console.log(`${file}: ${(total / 1000).toFixed(0)} ms busy${requests ? ` (${(total / requests).toFixed(0)} µs per request)` : ''}, ${(idle / 1000).toFixed(0)} ms idle, ${profile.samples.length} samples (percentages of busy time)`);
print('self time by package / file', selfByArea, top);
print('inclusive time by package / file (a sample counts once per area on its stack)', inclusiveArea, top);
print('self time by function', selfByFunction, top);
print("inclusive time of iflow's own functions", inclusiveOwn, top);

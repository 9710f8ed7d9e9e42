/*
 * The functions a V8 CPU profile (`node --cpu-prof`) spent its samples in,
 * by self time, the busiest first; idle and GC listed apart.
 *
 *   npx tsx scripts/bench/profile-top.ts <file.cpuprofile | dir> [--top 40]
 *
 * A directory: every .cpuprofile in it (and below), summed — e.g. the
 * receiving node of each run of `ab.ts --profile receiver`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' } } });

function profilesIn(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => profilesIn(join(path, name))).filter((file) => file.endsWith('.cpuprofile'));
}

/** Where a frame is: the package (node_modules/<name>) or the path under the repository, and the line. */
function place(url: string, line: number): string {
  if (url === '') return '';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length).replace(/^((?:@[^/]+\/)?[^/]+)\/.*$/, '$1');
  if (url.startsWith('node:')) return url;
  const dist = url.indexOf('/dist/');
  return `${dist >= 0 ? url.slice(dist + 1) : relative(process.cwd(), url.replace(/^file:\/\//, ''))}:${line + 1}`;
}

const selfMicros = new Map<string, number>();
let total = 0;
for (const file of positionals.flatMap(profilesIn)) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const micros = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'}  ${place(url, lineNumber)}`.trim();
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + micros);
    total += micros;
  }
}
const idle = selfMicros.get('(idle)') ?? 0;
const busy = total - idle;
console.log(`span ${(total / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (${((100 * busy) / Math.max(1, total)).toFixed(1)} %); per cent of busy:`);
const rows = [...selfMicros].filter(([key]) => key !== '(idle)').sort((x, y) => y[1] - x[1]);
for (const [key, micros] of rows.slice(0, Number(values.top))) console.log(`${((100 * micros) / Math.max(1, busy)).toFixed(2).padStart(6)} %  ${key}`);

/*
 * What a running node allocates, garbage included, by function: V8's
 * sampling heap profiler over the inspector protocol, with the objects
 * minor and major GCs collected kept in the profile (a plain `--heap-prof`
 * keeps only what is still alive, so it misses the garbage a hot path makes).
 *
 *   node --inspect=127.0.0.1:9339 dist/lib/main.js ...       # the node to look at
 *   npx tsx scripts/bench/heap-sample.ts --port 9339 --seconds 10 [--top 35]
 *
 * Run it while a load runs (loadgen.ts at a fixed rate: MB/s ÷ msg/s is the
 * bytes allocated per message). Loopback only.
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface SamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

interface Reply {
  id?: number;
  result?: { profile?: { head: SamplingNode } };
  error?: { message: string };
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9229' },
    seconds: { type: 'string', default: '10' },
    top: { type: 'string', default: '35' },
    interval: { type: 'string', default: '512' },
  },
});

const targets = (await (await fetch(`http://127.0.0.1:${values.port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
if (targets[0] === undefined) throw new Error(`no inspector target on 127.0.0.1:${values.port}`);
const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise<void>((resolve, reject) => {
  socket.once('open', () => resolve());
  socket.once('error', reject);
});

let lastId = 0;
const waiting = new Map<number, (reply: Reply) => void>();
socket.on('message', (data: Buffer) => {
  const reply = JSON.parse(data.toString()) as Reply;
  if (reply.id !== undefined) waiting.get(reply.id)?.(reply);
});
function call(method: string, params: object = {}): Promise<Reply> {
  const id = ++lastId;
  return new Promise((resolve, reject) => {
    waiting.set(id, (reply) => {
      waiting.delete(id);
      if (reply.error) reject(new Error(`${method}: ${reply.error.message}`));
      else resolve(reply);
    });
    socket.send(JSON.stringify({ id, method, params }));
  });
}

await call('HeapProfiler.enable');
await call('HeapProfiler.startSampling', {
  samplingInterval: Number(values.interval),
  includeObjectsCollectedByMinorGC: true,
  includeObjectsCollectedByMajorGC: true,
});
const seconds = Number(values.seconds);
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const head = (await call('HeapProfiler.stopSampling')).result?.profile?.head;
socket.close();
if (head === undefined) throw new Error('no profile returned');

const bySite = new Map<string, number>();
let total = 0;
const pending: SamplingNode[] = [head];
for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/^.*\/(dist|node_modules)\//, '$1/');
  const site = `${functionName || '(anonymous)'}  ${where}${where ? `:${lineNumber + 1}` : ''}`;
  bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
  total += node.selfSize;
  pending.push(...node.children);
}
console.log(`allocated ${(total / 1e6).toFixed(1)} MB in ${seconds} s (${(total / 1e6 / seconds).toFixed(2)} MB/s), by function:`);
for (const [site, bytes] of [...bySite].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) {
  console.log(`${(bytes / 1e6).toFixed(2).padStart(8)} MB  ${site}`);
}

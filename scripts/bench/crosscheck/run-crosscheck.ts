/*
 * Runs the cross-check generator (crosscheck.ts) in its own process for one
 * shape against one started target, and reads its one-line JSON result.
 * The runner's only link to it: a spec in, a result out.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CrosscheckResult, CrosscheckSpec } from './crosscheck.js';

export type { CrosscheckResult, CrosscheckSpec } from './crosscheck.js';

const ENTRY = fileURLToPath(new URL('./crosscheck.ts', import.meta.url));

export function runCrosscheck(spec: CrosscheckSpec): Promise<CrosscheckResult> {
  const boundMs = 1000 * (spec.warmupS + spec.durationS + 90 + (spec.mode === 'idle' ? 300 : 0));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(`exit code ${code}`);
        resolve(JSON.parse(line) as CrosscheckResult);
      } catch (error) {
        reject(new Error(`cross-check generator failed (${error instanceof Error ? error.message : String(error)}): ${stderr.trim().slice(-400)}`));
      }
    });
  });
}

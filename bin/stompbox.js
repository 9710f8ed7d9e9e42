#!/usr/bin/env node
// Launcher of the `stompbox` CLI (package.json "bin"). In a clone after
// `npm ci` it runs the TypeScript sources through tsx, with no build step;
// where tsx is not installed (a production install) it runs the build in
// dist/ (`npm run build`).
import { existsSync } from 'node:fs';

let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch {
  tsx = undefined;
}
if (tsx) {
  tsx.register();
  await import(new URL('./stompbox.ts', import.meta.url).href);
} else if (existsSync(new URL('../dist/bin/stompbox.js', import.meta.url))) {
  await import(new URL('../dist/bin/stompbox.js', import.meta.url).href);
} else {
  process.stderr.write('stompbox: found neither tsx (run npm ci) nor a build (run npm run build)\n');
  process.exit(1);
}

/*
 * Rewrites the configuration table in README.md from lib/config.ts
 * (`npx tsx scripts/config-table.ts`); spec/config.spec.ts fails when the
 * README and the code disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configTable } from '../lib/config.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const text = readFileSync(readme, 'utf8');
const start = text.indexOf('| variable | flag | default | meaning |');
if (start === -1) throw new Error('README.md has no configuration table');
let end = text.indexOf('\n\n', start);
if (end === -1) end = text.length;
writeFileSync(readme, text.slice(0, start) + configTable() + text.slice(end));

/*
 * The Lua library of every Redis part: one `.lua` file per script under
 * `lua/`, each with the parts of `lua/lib.lua` (shared functions and
 * constants) it uses in front, read once at start. Only those: Redis runs a
 * script's whole text on every call, so each `local function` of lib.lua
 * is a closure made per call — all sixteen cost ~5 µs of a route call's
 * ~47 at 1 000 msg/s (docs/bench/two-node-profile.md, session 15). A file
 * opens with its header:
 *
 *   --! keys: 3          how many of the arguments are KEYS (`dynamic`: the
 *                        caller passes the count first, as EVAL does)
 *   --! readonly         optional: the script writes nothing
 *
 * Each starts with a shebang (`#!lua`, `flags=no-writes` when read-only):
 * Redis 7 then refuses, on a cluster, any key or shard channel a script
 * touches outside the slot of its declared keys — the server itself lints
 * the key schema, on every call the contract suites make on a Redis Cluster
 * — and refuses a writing script as a whole under OOM instead of half-way.
 *
 * ioredis runs them by EVALSHA and falls back to EVAL when a server (a new
 * master after a failover, a restarted Redis) does not have the script yet,
 * so nothing needs loading ahead on each shard.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ScriptDefinition {
  /** What Redis runs: the shebang, the lib.lua parts the script uses, the script. */
  readonly lua: string;
  /** The script's own text (its file). */
  readonly own: string;
  /** Undefined: the caller passes the key count first. */
  readonly numberOfKeys?: number;
  readonly readOnly?: boolean;
}

/**
 * The directory of the `.lua` files: beside this module (in the sources, and in `dist/` where
 * `npm run build` copies them), else the sources' beside a build made by `tsc` alone.
 */
export const LUA_DIR = [new URL('./lua/', import.meta.url), new URL('../../../lib/cluster/lua/', import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(join(dir, 'lib.lua'))) ?? fileURLToPath(new URL('./lua/', import.meta.url));

const HEADER = /^--!\s*(\w+)(?::\s*(\S+))?\s*$/;

let library: Map<string, ScriptDefinition> | undefined;

function parse(name: string, source: string, lib: string): ScriptDefinition {
  let numberOfKeys: number | undefined;
  let keysDeclared = false;
  let readOnly = false;
  for (const line of source.split('\n')) {
    const header = HEADER.exec(line);
    if (!header) break;
    if (header[1] === 'keys') {
      keysDeclared = true;
      numberOfKeys = header[2] === 'dynamic' ? undefined : Number(header[2]);
      if (numberOfKeys !== undefined && !Number.isInteger(numberOfKeys)) throw new Error(`${name}.lua: bad "--! keys:" header`);
    } else if (header[1] === 'readonly') {
      readOnly = true;
    }
  }
  if (!keysDeclared) throw new Error(`${name}.lua: no "--! keys:" header`);
  const shebang = readOnly ? '#!lua flags=no-writes' : '#!lua';
  return { lua: `${shebang}\n${libFor(source, lib)}\n${source}`, numberOfKeys, readOnly, own: source };
}

/** A top-level definition of lib.lua: its name and its text, the comment lines right above it included. */
interface LibPart {
  readonly name: string;
  readonly text: string;
}

const DEFINITION = /^local\s+(?:function\s+)?([A-Za-z_]\w*)/;

/**
 * lib.lua cut at its top-level definitions (`local function f` / `local NAME =`
 * at column 0; bodies are indented), each with the `--` lines right above it.
 * What comes before the first (the file's header comment) is left out.
 */
export function libParts(lib: string): LibPart[] {
  const parts: Array<{ name: string; lines: string[] }> = [];
  let comments: string[] = [];
  for (const line of lib.split('\n')) {
    const definition = DEFINITION.exec(line);
    if (definition) {
      parts.push({ name: definition[1]!, lines: [...comments, line] });
      comments = [];
    } else if (line.startsWith('--') && !line.startsWith('--[[')) {
      comments.push(line);
    } else {
      parts[parts.length - 1]?.lines.push(...comments, line);
      comments = [];
    }
  }
  return parts.map(({ name, lines }) => ({ name, text: lines.join('\n').trimEnd() }));
}

/**
 * The parts of lib.lua `source` needs, in lib.lua's order (a part may use
 * those above it): each named, as a whole word outside a comment, by the
 * script or by a part it needs. A name in a string would bring its part in
 * too: harmless, and none is ever missed (a local is only reached by name).
 */
export function libFor(source: string, lib: string): string {
  const parts = libParts(lib);
  const needed = new Set<number>();
  // Comments dropped: a word in one is no use.
  const mentions = (text: string, name: string) => new RegExp(`\\b${name}\\b`).test(text.replace(/--.*$/gm, ''));
  const visit = (text: string) => {
    parts.forEach((part, i) => {
      if (!needed.has(i) && mentions(text, part.name)) {
        needed.add(i);
        visit(part.text);
      }
    });
  };
  visit(source);
  return parts.filter((_, i) => needed.has(i)).map((part) => part.text).join('\n\n');
}

/** Every script of the library, by file name without `.lua`. */
export function scriptLibrary(): ReadonlyMap<string, ScriptDefinition> {
  if (library) return library;
  const lib = readFileSync(join(LUA_DIR, 'lib.lua'), 'utf8');
  const scripts = new Map<string, ScriptDefinition>();
  for (const file of readdirSync(LUA_DIR).sort()) {
    if (!file.endsWith('.lua') || file === 'lib.lua') continue;
    const name = file.slice(0, -'.lua'.length);
    scripts.set(name, parse(name, readFileSync(join(LUA_DIR, file), 'utf8'), lib));
  }
  return (library = scripts);
}

/** The named script, for ioredis' `defineCommand`. */
export function script(name: string): ScriptDefinition {
  const definition = scriptLibrary().get(name);
  if (!definition) throw new Error(`no Lua script ${name}.lua in ${LUA_DIR}`);
  return definition;
}

/** The SHA1 EVALSHA names the script by (after SCRIPT LOAD of its `lua`). */
export function scriptSha(definition: Pick<ScriptDefinition, 'lua'>): string {
  return createHash('sha1').update(definition.lua).digest('hex');
}

/** The commands a part uses: `{ sbInboxAppend: 'inbox-append', ... }` → definitions, for defineCommand. */
export function defineScripts(client: { defineCommand(name: string, definition: { lua: string; numberOfKeys?: number; readOnly?: boolean }): void }, names: Readonly<Record<string, string>>): void {
  for (const [command, file] of Object.entries(names)) client.defineCommand(command, script(file));
}

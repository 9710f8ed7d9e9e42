/*
 * Per-destination authorisation, as RabbitMQ permissions and Centrifugo
 * namespaces do it: rules say which users (or JWT claims) may subscribe to
 * and send to which destination patterns. The rules come from a JSON file
 * (PERMISSIONS_FILE); in jwt mode a token's claim (PERMISSIONS_CLAIM) can
 * carry more patterns for its holder. Without either, every user may use
 * every destination (as before); with either, what no rule grants is
 * refused with ERR_FORBIDDEN (HTTP 403).
 *
 * File format:
 *   { "rules": [
 *       { "users": ["*"], "subscribe": ["/user/{self}/**", "/topic/public.*"], "send": ["/user/*\/queue/**"] },
 *       { "users": ["ops"], "subscribe": ["/topic/orders.*", "/queue/jobs"], "send": ["/topic/orders.*"] },
 *       { "claims": { "role": "worker" }, "subscribe": ["/queue/jobs"] } ] }
 * A rule applies when the user is in `users` ("*" for anyone) and every
 * claim in `claims` has the given value (or one of the given values; an
 * array claim matches when it holds one). A rule with neither applies to
 * no one. Patterns: `*` matches any characters but '/', `**` any characters,
 * `{self}` the user's own name. User destinations are matched in their send
 * form, `/user/<name>/queue/x`, also when subscribed as `/user/queue/x`.
 */
import { readFileSync } from 'node:fs';
import type { Destination } from './destinations.js';
import { BrokerError } from '../core/errors.js';

export type Action = 'subscribe' | 'send';
export type Claims = Readonly<Record<string, unknown>>;

export interface PermissionRule {
  users?: string[];
  claims?: Record<string, string | string[]>;
  subscribe?: string[];
  send?: string[];
}

/** Who asks: the user and, in jwt mode, the token's claims. */
export interface Principal {
  user: string;
  claims?: Claims;
}

export class Permissions {
  /** Refusals so far, per action (the /metrics counter). */
  readonly refused: Record<Action, number> = { subscribe: 0, send: 0 };

  constructor(
    private readonly rules: readonly PermissionRule[],
    private readonly userPrefix: string,
    /** jwt mode: the claim holding `{ subscribe: [...], send: [...] }`. */
    private readonly claim?: string,
  ) {}

  /** The claims these rules read (PERMISSIONS_CLAIM, the `claims` of rules): what a cookie session must carry. */
  claimNames(): string[] {
    const names = new Set<string>(this.claim === undefined ? [] : [this.claim]);
    for (const rule of this.rules) for (const name of Object.keys(rule.claims ?? {})) names.add(name);
    return [...names];
  }

  /** Reads and checks a rules file; throws an Error naming the file and what is wrong. */
  static load(path: string | undefined, userPrefix: string, claim?: string): Permissions | undefined {
    if (path === undefined && claim === undefined) return undefined;
    const rules = path === undefined ? [] : parseRules(readFileSync(path, 'utf8'), path);
    return new Permissions(rules, userPrefix, claim);
  }

  /** Throws ERR_FORBIDDEN unless a rule grants `action` on `destination` to `who`. */
  check(who: Principal, action: Action, destination: Destination): void {
    const name = this.canonical(destination);
    const granted = [...this.patternsFor(who, action)].some((pattern) => matches(pattern, who.user, name));
    if (granted) return;
    this.refused[action]++;
    throw new BrokerError('ERR_FORBIDDEN', `user "${who.user.slice(0, 64)}" may not ${action} to ${name.slice(0, 128)}`);
  }

  private *patternsFor(who: Principal, action: Action): Iterable<string> {
    for (const rule of this.rules) {
      if (applies(rule, who)) yield* rule[action] ?? [];
    }
    if (this.claim === undefined) return;
    const carried = who.claims?.[this.claim];
    if (typeof carried !== 'object' || carried === null) return;
    const patterns: unknown = (carried as Record<string, unknown>)[action];
    if (Array.isArray(patterns)) for (const p of patterns) if (typeof p === 'string') yield p;
  }

  /** User destinations in their send form, whichever form the client used. */
  private canonical(destination: Destination): string {
    if (destination.kind !== 'user') return destination.name;
    return this.userPrefix.replace(/\/$/, '') + '/' + destination.user + destination.target;
  }
}

function applies(rule: PermissionRule, who: Principal): boolean {
  if (rule.users === undefined && rule.claims === undefined) return false;
  if (rule.users !== undefined && !rule.users.includes('*') && !rule.users.includes(who.user)) return false;
  for (const [name, wanted] of Object.entries(rule.claims ?? {})) {
    const accepted = Array.isArray(wanted) ? wanted : [wanted];
    const value = who.claims?.[name];
    const held = Array.isArray(value) ? value : [value];
    if (!held.some((v) => typeof v === 'string' && accepted.includes(v))) return false;
  }
  return true;
}

function matches(pattern: string, self: string, name: string): boolean {
  const source = pattern
    .split('{self}')
    .map((part) =>
      part
        .split('**')
        .map((piece) => piece.split('*').map(escapeRegExp).join('[^/]*'))
        .join('.*'),
    )
    .join(escapeRegExp(self));
  return new RegExp(`^${source}$`).test(name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const RULE_KEYS = new Set(['users', 'claims', 'subscribe', 'send']);

function parseRules(text: string, path: string): PermissionRule[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`PERMISSIONS_FILE ${path}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const rules = typeof parsed === 'object' && parsed !== null ? (parsed as { rules?: unknown }).rules : undefined;
  if (!Array.isArray(rules)) throw new Error(`PERMISSIONS_FILE ${path}: expected {"rules": [...]}`);
  return rules.map((rule: unknown, i) => {
    const where = `PERMISSIONS_FILE ${path}: rules[${i}]`;
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) throw new Error(`${where} is not an object`);
    for (const key of Object.keys(rule)) if (!RULE_KEYS.has(key)) throw new Error(`${where} has an unknown key "${key}"`);
    const r = rule as Record<string, unknown>;
    for (const key of ['users', 'subscribe', 'send']) {
      const list = r[key];
      if (list !== undefined && (!Array.isArray(list) || !list.every((s) => typeof s === 'string'))) throw new Error(`${where}.${key} must be a list of strings`);
    }
    const claims = r.claims;
    if (claims !== undefined) {
      const ok =
        typeof claims === 'object' &&
        claims !== null &&
        !Array.isArray(claims) &&
        Object.values(claims).every((v) => typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string')));
      if (!ok) throw new Error(`${where}.claims must map claim names to a string or a list of strings`);
    }
    return rule as PermissionRule;
  });
}

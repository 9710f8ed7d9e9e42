import type { NodeInfo } from './presence.js';
import type { RelayHandler } from './relay.js';

/**
 * The shared state of in-memory cluster parts. One process normally has one
 * node and one hub; several nodes in one process (contract specs) share a hub
 * and then behave as a cluster.
 */
export class MemoryHub {
  readonly nodes = new Map<string, NodeInfo>();
  /** user → nodes holding a session of the user */
  readonly userNodes = new Map<string, Set<string>>();
  /** `${user}\0${destination}` → nodes holding a subscription */
  readonly subscriptions = new Map<string, Set<string>>();
  /** topic destination → nodes with local subscribers */
  readonly topicNodes = new Map<string, Set<string>>();
  readonly relayHandlers = new Map<string, RelayHandler>();
}

export function subscriptionKey(user: string, destination: string): string {
  return `${user}\0${destination}`;
}

export function addToSetMap<K, V>(map: Map<K, Set<V>>, key: K, value: V): boolean {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  const had = set.has(value);
  set.add(value);
  return !had;
}

export function removeFromSetMap<K, V>(map: Map<K, Set<V>>, key: K, value: V): boolean {
  const set = map.get(key);
  if (!set || !set.delete(value)) return false;
  if (set.size === 0) map.delete(key);
  return true;
}

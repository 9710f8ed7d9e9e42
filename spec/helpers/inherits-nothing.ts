/**
 * True when no key reaches `object` through its prototype chain: every
 * prototype on it is empty (no own keys, symbols included) and the chain ends
 * at null. What a header table must be for `__proto__`, `constructor` or
 * `toString` to be plain header names (lib/stomp/frame.ts `createHeaders`).
 */
export function inheritsNothing(object: object): boolean {
  for (let proto = Object.getPrototypeOf(object) as object | null; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    if (Reflect.ownKeys(proto).length > 0) return false;
  }
  return true;
}

/*
 * Short strings decoded from bytes, remembered by those bytes: what a client
 * writes in its frames' headers (its destination, content-type) and what a
 * cluster envelope carries (its user and destinations, the sender, header
 * names and common values) repeat from one frame or message to the next, and
 * were decoded again each time — ~0.2 µs a string on the project's machine,
 * and a new string must be hashed again to be a map key, where a remembered
 * one keeps its hash. Used by the frame parser and the envelope codec, a
 * table each.
 *
 * A direct-mapped table: each slot holds the last string decoded from bytes
 * that hash to it (up to 64 bytes, copied into one arena); a miss decodes
 * and takes the slot. Bounded (512 slots, 32 KiB of bytes), never grows.
 * Decoding is deterministic, so equal bytes give an equal string whether
 * remembered or not (invalid UTF-8 included: U+FFFD either way).
 */
const SLOTS = 512;
const MAX_BYTES = 64;

export class RepeatedStrings {
  private readonly arena = new Uint8Array(SLOTS * MAX_BYTES);
  /** Byte length of each slot's string; -1 when empty. */
  private readonly lengths = new Int32Array(SLOTS).fill(-1);
  private readonly texts: string[] = new Array<string>(SLOTS).fill('');

  /** `buf[start, end)` as UTF-8. */
  decode(buf: Buffer, start: number, end: number): string {
    const length = end - start;
    if (length > MAX_BYTES) return buf.toString('utf8', start, end);
    // FNV-1a over the bytes.
    let hash = 0x811c9dc5 ^ length;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ buf[i]!, 0x01000193);
    const slot = (hash ^ (hash >>> 16)) & (SLOTS - 1);
    const at = slot * MAX_BYTES;
    const arena = this.arena;
    if (this.lengths[slot] === length) {
      let i = 0;
      while (i < length && arena[at + i] === buf[start + i]) i++;
      if (i === length) return this.texts[slot]!;
    }
    const text = buf.toString('utf8', start, end);
    for (let i = 0; i < length; i++) arena[at + i] = buf[start + i]!;
    this.lengths[slot] = length;
    this.texts[slot] = text;
    return text;
  }
}

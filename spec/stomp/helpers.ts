/* Shared test helpers for the STOMP codec specs (not a spec file itself). */
import {
  StompParser,
  type FrameLimits,
  type StompCodecError,
  type StompFrame,
  type StompVersion,
} from '../../lib/stomp/index.js';

export interface Collected {
  parser: StompParser;
  frames: StompFrame[];
  errors: StompCodecError[];
  heartbeats: number;
}

/** A parser wired to arrays that record everything it reports. */
export function collector(limits: Partial<FrameLimits> = {}, version?: StompVersion): Collected {
  const frames: StompFrame[] = [];
  const errors: StompCodecError[] = [];
  const out: Collected = {
    parser: undefined as unknown as StompParser,
    frames,
    errors,
    heartbeats: 0,
  };
  out.parser = new StompParser(
    {
      onFrame: (frame) => frames.push(frame),
      onHeartbeat: () => {
        out.heartbeats++;
      },
      onError: (error) => errors.push(error),
    },
    limits,
  );
  if (version !== undefined) out.parser.version = version;
  return out;
}

/** Feeds each chunk in order to a fresh parser. */
export function parseChunks(
  chunks: ReadonlyArray<Buffer | string>,
  limits: Partial<FrameLimits> = {},
  version?: StompVersion,
): Collected {
  const c = collector(limits, version);
  for (const chunk of chunks) c.parser.push(chunk);
  return c;
}

/** A literal byte string: every char code 0..255 is one byte. */
export function b(bytes: string): Buffer {
  return Buffer.from(bytes, 'latin1');
}

/** A frame as plain, deep-comparable data (body as latin1 so every byte is visible). */
export interface PlainFrame {
  command: string;
  headers: Array<[string, string]>;
  body: string;
}

export function plain(frame: StompFrame): PlainFrame {
  return {
    command: frame.command,
    headers: Object.entries(frame.headers),
    body: frame.body.toString('latin1'),
  };
}

/** Every split of `data` into `pieces` consecutive chunks at the given cut points. */
export function splitAt(data: Buffer, cuts: readonly number[]): Buffer[] {
  const sorted = [...cuts].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of sorted) {
    chunks.push(data.subarray(from, cut));
    from = cut;
  }
  chunks.push(data.subarray(from));
  return chunks;
}

export function bytewise(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i++) chunks.push(data.subarray(i, i + 1));
  return chunks;
}

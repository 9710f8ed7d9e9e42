/** STOMP protocol versions this codec speaks. */
export type StompVersion = '1.0' | '1.1' | '1.2';

export const SUPPORTED_VERSIONS: readonly StompVersion[] = ['1.0', '1.1', '1.2'];

/**
 * Headers as parsed: the first occurrence of a repeated header wins
 * (STOMP 1.2 "Repeated Header Entries"). A null-prototype object, so header
 * names such as `__proto__` are plain keys.
 */
export type StompHeaders = Record<string, string>;

export interface StompFrame {
  command: string;
  headers: StompHeaders;
  /** Raw body bytes; may contain NUL when the frame had a content-length. */
  body: Buffer;
}

export function createHeaders(init?: Record<string, string | undefined>): StompHeaders {
  const headers: StompHeaders = Object.create(null) as StompHeaders;
  if (init) {
    for (const key of Object.keys(init)) {
      const value = init[key];
      if (value !== undefined) headers[key] = value;
    }
  }
  return headers;
}

/** CONNECT, STOMP and CONNECTED frames never escape header values (STOMP 1.2 "Value Encoding"). */
export function isUnescapedCommand(command: string): boolean {
  return command === 'CONNECT' || command === 'CONNECTED' || command === 'STOMP';
}

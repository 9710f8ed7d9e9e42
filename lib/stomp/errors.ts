/**
 * Codec errors. Each carries a stable `code` so the broker can map it to an
 * ERROR frame (and metrics) in one place without matching on message text.
 */
export type StompCodecErrorCode =
  | 'ERR_STOMP_MALFORMED_FRAME'
  | 'ERR_STOMP_INVALID_ESCAPE'
  | 'ERR_STOMP_INVALID_CONTENT_LENGTH'
  | 'ERR_STOMP_MISSING_NUL'
  | 'ERR_STOMP_FRAME_TOO_LARGE'
  | 'ERR_STOMP_BODY_TOO_LARGE'
  | 'ERR_STOMP_TOO_MANY_HEADERS'
  | 'ERR_STOMP_HEADER_LINE_TOO_LONG';

export class StompCodecError extends Error {
  override readonly name = 'StompCodecError';
  constructor(
    readonly code: StompCodecErrorCode,
    message: string,
  ) {
    super(message);
  }
}

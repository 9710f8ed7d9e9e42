/** Bounds the parser enforces so that no input can make it hold unbounded memory. */
export interface FrameLimits {
  /**
   * Largest whole frame (command, headers and body) in bytes.
   * @default 1114112 (1 MiB body plus 64 KiB of headers)
   */
  maxFrameSize: number;
  /** Most headers in one frame. @default 64 */
  maxHeaders: number;
  /** Longest command or header line, in bytes. @default 8192 */
  maxHeaderLineLength: number;
  /** Largest body in bytes. @default 1048576 */
  maxBodySize: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = Object.freeze({
  maxFrameSize: 1024 * 1024 + 64 * 1024,
  maxHeaders: 64,
  maxHeaderLineLength: 8192,
  maxBodySize: 1024 * 1024,
});

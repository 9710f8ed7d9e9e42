/*
 * What the load generator needs from one client connection, whatever the
 * wire protocol (STOMP over WebSocket, or socket.io for the socket.io peer).
 */

export interface ConnectionOptions {
  url: string;
  login?: string;
  passcode?: string;
  /** STOMP `host` header (a RabbitMQ vhost). @default '/' */
  host: string;
  /** STOMP heart-beat [cx, cy] in ms. @default [0, 0] */
  heartbeat: [number, number];
  /** Send SEND frames as WebSocket binary frames (needed for binary bodies). */
  binaryFrames: boolean;
  /**
   * Put all STOMP frames one connection writes in one event-loop turn into a
   * single WebSocket message (STOMP allows several frames per message). Cuts
   * per-message cost on both sides, but typical browser clients send one
   * frame per message, so it is off by default. @default false
   */
  coalesce: boolean;
  /**
   * Hold the TCP socket corked for the rest of the event-loop turn, so the
   * frames of one turn leave in one syscall (the unlimited mode sends one
   * frame per message received). Off at a fixed rate: a client writes each
   * frame as it sends it, and the send time in the body must be the time the
   * frame went to the socket. @default true
   */
  corkTurn: boolean;
  /** Extra headers added to every SEND frame (e.g. RabbitMQ queue properties). */
  sendHeaders: Record<string, string>;
  /** Extra headers added to every SUBSCRIBE frame. */
  subscribeHeaders: Record<string, string>;
  /** Source address for the TCP connection (a 127.x.y.z loopback address). */
  localAddress?: string;
  /** Bound on the WebSocket + CONNECT → CONNECTED handshake and on each RECEIPT wait. @default 10000 */
  timeoutMs: number;
}

export interface BenchConnection {
  /** Opens the transport and completes the protocol handshake (STOMP CONNECT → CONNECTED). */
  connect(): Promise<void>;
  /** Subscribes and resolves once the broker confirms (STOMP RECEIPT). */
  subscribe(destination: string): Promise<void>;
  /** Fire-and-forget publish; bytes are batched per event-loop turn where the transport allows. */
  publish(destination: string, body: Buffer): void;
  /**
   * Every delivered message body, with the time (body.ts nowMs) its
   * WebSocket message was handed up by the socket, before any parsing.
   */
  onMessage: (body: Buffer, receivedMs: number) => void;
  /** A failure after the handshake (ERROR frame, unexpected close). */
  onFailure: (error: Error) => void;
  readonly heartbeatsReceived: number;
  /**
   * Deliveries whose headers do not match the subscription they came through:
   * STOMP, a MESSAGE whose `subscription` names none of this connection's
   * subscriptions or whose `destination` is not the one that subscription
   * asked for; socket.io, a `message` for a room this connection did not join.
   */
  readonly headerMismatches: number;
  /** The first such delivery, described (null when none). */
  readonly firstHeaderMismatch: string | null;
  readonly open: boolean;
  close(): Promise<void>;
}

/** STOMP over WebSocket, socket.io, or the bare relay's plain WebSocket protocol (raw-connection.ts). */
export type Protocol = 'stomp' | 'socketio' | 'raw';

/** What a transport (WebSocket, SockJS, in-memory in specs) offers a session. */
export interface Connection {
  /** Writes one serialised frame; `binary` asks for a binary WebSocket message. */
  send(data: Buffer, binary: boolean): void;
  /** Closes after what was written is flushed. */
  close(code?: number, reason?: string): void;
  /** Bytes written but not yet flushed to the socket. */
  readonly bufferedAmount: number;
  readonly remoteAddress: string;
  /** Stop / restart reading input (backpressure on a fast sender). */
  pause(): void;
  resume(): void;
}

/** How the transport learned who the client is before CONNECT, if it did. */
export interface TransportContext {
  /** Identity from a session cookie or an `access_token` on the URL. */
  user?: string;
  /** jwt mode: the claims that identity carries (a JWT's, or those the login put into the session cookie). */
  claims?: Readonly<Record<string, unknown>>;
  /** `v12.stomp` etc. when negotiated; the version the session may use at most. */
  subprotocol?: string;
  /** Force binary WebSocket messages for every frame. */
  alwaysBinary?: boolean;
}

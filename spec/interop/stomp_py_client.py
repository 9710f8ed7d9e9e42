"""
stomp.py (Debian's python3-stomp) as a client the specs drive: commands as
JSON lines on stdin, events as JSON lines on stdout.

    python3 stomp_py_client.py <url> <login> <passcode> <version> <heart-beat cx,cy>

url: tcp://127.0.0.1:<port> (stomp.py's own transport) or
ws://127.0.0.1:<port>/stomp. Debian's stomp.py 8.0 has no WebSocket
transport (8.1 added one), so WsTransport below gives it one over
python3-websocket, the way 8.1 does: frames go out as binary messages and
what arrives is fed to stomp.py's own frame reader.

Commands: {"op": "subscribe", "destination", "id", "ack"?, "receipt"?}
          {"op": "send", "destination", "body", "headers"?, "receipt"?}
          {"op": "ack", "message_id", "subscription", "receipt"?}
          {"op": "disconnect"}
Events:   {"event": "connected"|"message"|"receipt"|"error"|"disconnected", "headers", "body"?}
"""
import json
import sys
import threading
import urllib.parse

import stomp
import stomp.connect
import stomp.protocol
import stomp.transport
import websocket

OUT = threading.Lock()


def emit(event, frame=None):
    record = {"event": event}
    if frame is not None:
        record["headers"] = dict(frame.headers)
        if frame.body is not None:
            record["body"] = frame.body if isinstance(frame.body, str) else frame.body.decode("utf-8", "replace")
    with OUT:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class Events(stomp.ConnectionListener):
    def on_connected(self, frame):
        emit("connected", frame)

    def on_message(self, frame):
        emit("message", frame)

    def on_receipt(self, frame):
        emit("receipt", frame)

    def on_error(self, frame):
        emit("error", frame)

    def on_disconnected(self):
        emit("disconnected")


class WsTransport(stomp.transport.BaseTransport):
    """STOMP over a WebSocket for stomp.py 8.0 (see the module comment)."""

    def __init__(self, url):
        stomp.transport.BaseTransport.__init__(self, auto_decode=True)
        self.url = url
        self.ws = None
        self.vhost = None

    def attempt_connection(self):
        self.ws = websocket.create_connection(self.url, subprotocols=["v12.stomp", "v11.stomp", "v10.stomp"])
        # stomp.py's 1.2 CONNECT takes its host header from here.
        parsed = urllib.parse.urlparse(self.url)
        self.current_host_and_port = (parsed.hostname, parsed.port)

    def is_connected(self):
        return self.ws is not None and self.ws.connected and stomp.transport.BaseTransport.is_connected(self)

    def send(self, encoded_frame):
        self.ws.send(encoded_frame, opcode=websocket.ABNF.OPCODE_BINARY)

    def receive(self):
        data = self.ws.recv()
        return data.encode("utf-8") if isinstance(data, str) else data

    def disconnect_socket(self):
        self.running = False
        if self.ws is not None:
            self.ws.close()
        if not self.notified_on_disconnect:
            self.notify("disconnected")

    def cleanup(self):
        self.ws = None


def ws_connection(url, version, heartbeats):
    protocol = stomp.protocol.Protocol12 if version == "1.2" else stomp.protocol.Protocol11

    class WsConnection(stomp.connect.BaseConnection, protocol):
        def __init__(self):
            transport = WsTransport(url)
            stomp.connect.BaseConnection.__init__(self, transport)
            protocol.__init__(self, transport, heartbeats)

        def connect(self, *args, **kwargs):
            self.transport.start()
            protocol.connect(self, *args, **kwargs)

        def disconnect(self, receipt=None, headers=None, **keyword_headers):
            protocol.disconnect(self, receipt, headers, **keyword_headers)
            self.transport.stop()

    return WsConnection()


def main():
    url, login, passcode, version, heartbeat = sys.argv[1:6]
    heartbeats = tuple(int(v) for v in heartbeat.split(","))
    if url.startswith("tcp://"):
        host, port = url[len("tcp://"):].split(":")
        cls = stomp.Connection12 if version == "1.2" else stomp.Connection11
        conn = cls([(host, int(port))], heartbeats=heartbeats, auto_content_length=True)
    else:
        conn = ws_connection(url, version, heartbeats)
    conn.set_listener("events", Events())
    conn.connect(login, passcode, wait=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        receipt = command.get("receipt")
        extra = {"receipt": receipt} if receipt else {}
        if op == "subscribe":
            conn.subscribe(command["destination"], command["id"], ack=command.get("ack", "auto"), headers=extra)
        elif op == "send":
            conn.send(command["destination"], command["body"], headers={**command.get("headers", {}), **extra})
        elif op == "ack":
            if version == "1.2":
                conn.ack(command["message_id"], receipt=receipt)
            else:
                conn.ack(command["message_id"], command["subscription"], receipt=receipt)
        elif op == "disconnect":
            conn.disconnect(receipt="bye")
            break


if __name__ == "__main__":
    main()

"""
A Python backend that notifies a user through stompbox over TCP, with
stomp.py (Debian: apt-get install python3-stomp; or pip install stomp.py):

    STOMP_TCP_PORT=61613 npm start                       # the broker, with its TCP listener
    python3 examples/python-backend/notify.py bob "your report is ready"

Every session of bob subscribed to /user/queue/notifications gets it (or his
inbox keeps it until he subscribes). The RECEIPT means the broker accepted
it: delivered, relayed to bob's node, or stored.
Environment: STOMP_HOST (127.0.0.1), STOMP_PORT (61613), STOMP_LOGIN
(notifier), STOMP_PASSCODE (static mode: the password; jwt mode: a JWT).
For TLS (STOMP_TLS_PORT): conn.set_ssl(for_hosts=[(host, port)], ca_certs="ca.pem").
"""
import json
import os
import sys
import threading
import urllib.parse

import stomp


class Receipts(stomp.ConnectionListener):
    def __init__(self):
        self.done = threading.Event()
        self.error = None

    def on_receipt(self, frame):
        self.done.set()

    def on_error(self, frame):
        self.error = "ERROR %s: %s" % (frame.headers.get("code"), frame.headers.get("message"))
        self.done.set()


def main():
    to, text = sys.argv[1], sys.argv[2]
    host = os.environ.get("STOMP_HOST", "127.0.0.1")
    port = int(os.environ.get("STOMP_PORT", "61613"))
    conn = stomp.Connection12([(host, port)], heartbeats=(10000, 10000))
    listener = Receipts()
    conn.set_listener("receipts", listener)
    conn.connect(os.environ.get("STOMP_LOGIN", "notifier"), os.environ.get("STOMP_PASSCODE", ""), wait=True)
    conn.send(
        "/user/%s/queue/notifications" % urllib.parse.quote(to, safe=""),
        json.dumps({"text": text}),
        content_type="application/json",
        headers={"receipt": "sent"},
    )
    listener.done.wait(10)
    if listener.error:
        sys.exit(listener.error)
    print("accepted for %s" % to)
    conn.disconnect()


if __name__ == "__main__":
    main()

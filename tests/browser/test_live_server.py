"""The live server the browser tests use survives what browsers do to it."""

from __future__ import annotations

import gc
import socket
import struct
import time
from urllib.parse import urlsplit

from tests.browser.conftest import LiveServer


def test_requests_cut_off_by_the_browser_leave_no_file_open(live: LiveServer):
    """A browser leaving a page resets the connections still loading its script; the
    server must not leave the static file's handle to the garbage collector (a
    ResourceWarning, an error under this suite's warning filter)."""
    address = urlsplit(live.url)
    for _ in range(30):
        conn = socket.create_connection((address.hostname, address.port))
        conn.sendall(b"GET /static/js/forum.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        conn.recv(64)  # the answer has begun
        # Close with a reset (linger 0), as a cancelled request does, before the rest.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    time.sleep(0.5)  # let the server's threads finish with them
    gc.collect()

#!/usr/bin/env python3
"""A plain HTTP file server with Range support, for the disk writer's tests.

Usage: range-server.py DIR PORTFILE [CORRUPT_OFFSET]
Serves DIR on 127.0.0.1 (a free port, written to PORTFILE). With CORRUPT_OFFSET, the first
range response that starts at that byte has one byte flipped: a chunk corrupted in flight.
"""
import http.server
import os
import sys

root, portfile = sys.argv[1], sys.argv[2]
corrupt = int(sys.argv[3]) if len(sys.argv) > 3 else None


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        global corrupt
        path = os.path.join(root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        start, end = 0, size - 1
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            start, end = int(a), min(int(b), size - 1)
        with open(path, "rb") as f:
            f.seek(start)
            data = bytearray(f.read(end - start + 1))
        if rng and corrupt == start and data:
            data[len(data) // 2] ^= 0xFF
            corrupt = None
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()

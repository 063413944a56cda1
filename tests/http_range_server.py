"""A small static HTTP server with byte-range support (as Common Crawl's web front serves), for
tests: `python tests/http_range_server.py DIR PORT`. Prints `ready` once listening; serves GET
and HEAD, `Range: bytes=a-b` answered 206; counts nothing, stores nothing."""
from __future__ import annotations

import os
import re
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from functools import partial

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _send_file(self, head: bool):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        start, end = 0, size - 1
        status = 200
        if rng:
            m = _RANGE.match(rng.strip())
            if not m:
                self.send_error(416)
                return
            a, b = m.groups()
            if a == "":
                start, end = max(0, size - int(b)), size - 1
            else:
                start, end = int(a), min(size - 1, int(b)) if b else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        n = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(n))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(start)
            left = n
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    def do_GET(self):
        self._send_file(False)

    def do_HEAD(self):
        self._send_file(True)


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    srv = ThreadingHTTPServer(("127.0.0.1", port), partial(RangeHandler, directory=root))
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

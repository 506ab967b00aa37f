"""A local server speaking the GCE metadata protocol for instance attributes: answers only requests
carrying `Metadata-Flavor: Google` (403 otherwise, as the real one), 404 for a missing attribute."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/computeMetadata/v1/instance/attributes/"


class MetadataServer:
    def __init__(self, attributes: dict[str, str]):
        self.attributes = dict(attributes)
        self.asked: list[tuple[str, bool]] = []  # (attribute, had the header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                flavored = self.headers.get("Metadata-Flavor") == "Google"
                key = self.path[len(PREFIX) :] if self.path.startswith(PREFIX) else None
                server.asked.append((key or self.path, flavored))
                if not flavored:
                    return self._reply(403, "Missing Metadata-Flavor:Google header.")
                if key is None or key not in server.attributes:
                    return self._reply(404, "not found")
                self._reply(200, server.attributes[key])

            def _reply(self, code: int, body: str):
                data = body.encode()
                self.send_response(code)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", "application/text")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

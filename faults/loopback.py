"""A threaded HTTP server on 127.0.0.1 (a free port) for tests and fault injection of HTTP clients:
the OpenAI-compatible endpoints the generator and judge talk to, a benchmark mirror. Subclasses
give the handler; this owns the port, the serving thread and the shutdown."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHTTPServer:
    path_prefix = ""  # e.g. "/v1" for an OpenAI-compatible API

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path_prefix}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

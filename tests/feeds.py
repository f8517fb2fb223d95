"""A decision source for the tests: a real HTTP server on a loopback port serving saved feeds
(tests/fixtures/sources), counting what it is asked for. ``status``: what it answers instead."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["FIXTURES", "FeedServer"]

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


@dataclass
class FeedServer:
    """Serves ``files`` (path → bytes); ``url(path)`` is where one is."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200
    hits: list[str] = field(default_factory=list)
    base: str = ""
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(self, path: str, fixture: str) -> str:
        self.files[path] = (FIXTURES / fixture).read_bytes()
        return self.url(path)

    def __enter__(self) -> FeedServer:
        kept = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kept.hits.append(self.path)
                body = kept.files.get(self.path)
                status = kept.status if body is not None else 404
                body = body if status == 200 and body is not None else b""
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

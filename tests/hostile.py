"""Small hostile HTTP servers on 127.0.0.1, for behaviour the sandbox cannot express.

Each server runs a plain :mod:`http.server` in a thread and answers every request
with whatever its ``respond`` callable decides; it records what it received, so a
test can check what was (or was not) sent to it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request a hostile server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What to answer: a status, headers, and a body (bytes, or chunks streamed one by one)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterator[bytes] = b""

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        """A JSON answer."""
        return cls(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


class HostileServer:
    """An HTTP server on 127.0.0.1 whose answers a test decides; use as a context manager."""

    def __init__(self, respond: Callable[[Received], Reply]) -> None:
        self.respond = respond
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received("POST", self.path, dict(self.headers), self.rfile.read(length))
                server.received.append(request)
                reply = server.respond(request)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                declared = "Content-Length" in reply.headers  # may lie: sent as given
                if isinstance(reply.body, bytes) and not declared:
                    self.send_header("Content-Length", str(len(reply.body)))
                elif not declared:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunks = [reply.body] if isinstance(reply.body, bytes) else reply.body
                try:
                    for chunk in chunks:
                        if declared or isinstance(reply.body, bytes):
                            self.wfile.write(chunk)
                        else:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    if not declared and not isinstance(reply.body, bytes):
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = declared or self.close_connection

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def relayed(upstream: str, tamper: Callable[[Any], Any]) -> Callable[[Received], Reply]:
    """A ``respond`` that forwards each request to ``upstream`` and tampers with its JSON.

    ``tamper`` gets the parsed answer and returns the one to send; answers that
    are not JSON (or not 200) pass through unchanged.
    """
    import urllib.error
    import urllib.request

    def respond(request: Received) -> Reply:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        forwarded = urllib.request.Request(
            upstream + request.path, data=request.body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=30) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), exc.read())
        if status == 200:
            return Reply.json(tamper(json.loads(body)))
        return Reply(status, {}, body)

    return respond


def replace_values(payload: Any, key: str, change: Callable[[Any], Any]) -> Any:
    """``payload`` (parsed JSON) with every value under ``key`` replaced by ``change(value)``."""
    if isinstance(payload, dict):
        return {
            k: change(v) if k == key else replace_values(v, key, change) for k, v in payload.items()
        }
    if isinstance(payload, list):
        return [replace_values(item, key, change) for item in payload]
    return payload

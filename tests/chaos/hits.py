"""The jobs' real side effect: an HTTP server on 127.0.0.1 that records every hit per task."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_DELAY_SECONDS = 5.0


class HitServer:
    """GET /hit/<key>?delay=<seconds>: record (key, arrival time), wait `delay`, answer 200."""

    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="chaos-hits", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, key: str, delay_seconds: float) -> str:
        return f"http://127.0.0.1:{self.port}/hit/{key}?delay={delay_seconds:.2f}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> dict[str, list[float]]:
        with self.lock:
            return {key: sorted(times) for key, times in self.hits.items()}

    def _record(self, key: str) -> None:
        with self.lock:
            self.hits[key].append(time.time())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        record = self._record

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                parts = urlsplit(self.path)
                if not parts.path.startswith("/hit/"):
                    self.send_error(404)
                    return
                record(parts.path[len("/hit/"):])
                delay = float(parse_qs(parts.query).get("delay", ["0"])[0])
                time.sleep(min(max(delay, 0.0), MAX_DELAY_SECONDS))
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        return Handler

"""A webhook receiver on the test HTTP server (tests/api_server.py): it can be
down (503) and keeps every message it accepted, with its arrival time."""

from __future__ import annotations

import json
import threading
import time

from .api_server import ApiServer, send


class WebhookReceiver:
    def __init__(self, server: ApiServer, path: str = "/hook") -> None:
        self.down = threading.Event()
        self.accepted: list[tuple[float, str, dict]] = []  # (monotonic time, idempotency key, body)
        self.refused = 0
        self._mutex = threading.Lock()
        self.url = server.serve(path, self._behave)

    def _behave(self, handler, server) -> None:
        body = json.loads(handler.request_body or b"{}")
        with self._mutex:
            if self.down.is_set():
                self.refused += 1
            else:
                self.accepted.append((time.monotonic(), handler.headers.get("Idempotency-Key"), body))
        send(handler, 503 if self.down.is_set() else 200, b"{}")

    @property
    def messages(self) -> list[tuple[float, str, dict]]:
        with self._mutex:
            return list(self.accepted)

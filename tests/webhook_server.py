"""A webhook receiver on the test HTTP server (tests/api_server.py): it can be
down (503), answer another status, or hold each request until released; it
keeps every message it accepted, with its arrival time, and every request's
headers and raw body (to check signatures against)."""

from __future__ import annotations

import json
import threading
import time

from tests.api_server import ApiServer, send

HOLD_AT_MOST = 20.0  # a held request is answered by then, released or not


class WebhookReceiver:
    def __init__(self, server: ApiServer, path: str = "/hook") -> None:
        self.down = threading.Event()
        self.status = 200  # the answer when not down
        self.hold = threading.Event()  # set: hold each request until ``release`` is set
        self.release = threading.Event()
        self.accepted: list[tuple[float, str, dict]] = []  # (monotonic time, idempotency key, body)
        self.requests: list[tuple[dict, bytes]] = []  # (headers, raw body) of every request
        self.arrived = 0  # requests received, held or not
        self.refused = 0
        self._mutex = threading.Lock()
        self.url = server.serve(path, self._behave)

    def _behave(self, handler, server) -> None:
        raw = handler.request_body or b""
        with self._mutex:
            self.arrived += 1
            self.requests.append(({k.lower(): v for k, v in handler.headers.items()}, raw))
        if self.hold.is_set():
            self.release.wait(HOLD_AT_MOST)
        body = json.loads(raw or b"{}")
        status = 503 if self.down.is_set() else self.status
        with self._mutex:
            if status == 503:
                self.refused += 1
            elif status < 300:
                self.accepted.append((time.monotonic(), handler.headers.get("Idempotency-Key"), body))
        send(handler, status, b"{}")

    @property
    def messages(self) -> list[tuple[float, str, dict]]:
        with self._mutex:
            return list(self.accepted)

    @property
    def received(self) -> list[tuple[dict, bytes]]:
        with self._mutex:
            return list(self.requests)

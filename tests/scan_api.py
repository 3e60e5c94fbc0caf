"""A scan API on 127.0.0.1 that takes ``seconds`` per scan and counts the
scans it was asked for, per (schedule, slot): what really reached it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .api_server import send


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a herd connects all at once (the default backlog is 5)


class CountingScanApi:
    def __init__(self, *, seconds: float):
        self.seconds = seconds
        self.scans: Counter[tuple[str, str]] = Counter()
        self.order: list[tuple[str, str]] = []  # arrival order
        mutex = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                key = (payload.get("schedule_id", ""), payload.get("scheduled_for") or "manual")
                with mutex:
                    api.scans[key] += 1
                    api.order.append(key)
                time.sleep(api.seconds)
                try:
                    send(self, 200, json.dumps({"scan_id": f"scan-{payload.get('execution_id')}"}).encode())
                except OSError:
                    pass  # the scheduler that asked was killed meanwhile

            def log_message(self, *args):
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/scans"

    def count(self) -> int:
        return sum(self.scans.values())

    def duplicates(self) -> dict:
        return {key: n for key, n in self.scans.items() if n > 1}

    def __enter__(self) -> "CountingScanApi":
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

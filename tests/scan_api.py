"""A scan API on 127.0.0.1 that takes ``seconds`` per scan and counts the
scans it started, per (schedule, slot): what really reached it.

Like any API that honours Idempotency-Key, a request whose key it has seen
starts no second scan; it is answered with the first one's result and
counted in ``repeats``."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.api_server import send


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a herd connects all at once (the default backlog is 5)


class CountingScanApi:
    def __init__(self, *, seconds: float):
        self.seconds = seconds
        self.scans: Counter[tuple[str, str]] = Counter()
        self.order: list[tuple[str, str]] = []  # arrival order
        self.repeats: Counter[str] = Counter()  # requests with a key seen before
        keys: dict[str, threading.Event] = {}  # key -> set when its scan is done
        mutex = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                key = (payload.get("schedule_id", ""), payload.get("scheduled_for") or "manual")
                idempotency_key = self.headers.get("Idempotency-Key")
                with mutex:
                    first = idempotency_key is None or idempotency_key not in keys
                    if first:
                        done = threading.Event()
                        if idempotency_key:
                            keys[idempotency_key] = done
                        api.scans[key] += 1
                        api.order.append(key)
                    else:
                        done = keys[idempotency_key]
                        api.repeats[idempotency_key] += 1
                if first:
                    time.sleep(api.seconds)
                    done.set()
                else:
                    done.wait(api.seconds + 5)
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

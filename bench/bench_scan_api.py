"""The scan-API runner: POSTs/s and client CPU per scan at MAX_WORKERS=5.

A local scan API on 127.0.0.1, in its own process (so that its CPU is not
counted as the client's): a ThreadingHTTPServer speaking HTTP/1.1 keep-alive
with a Content-Length, answering ``{"scan_id": ...}`` at once. Five threads
call the real ``http_runner`` (schedules/scans/http_api.py) for a fixed
number of POSTs between them. The client's CPU is ``time.process_time()``
of its process (all threads) over the measured POSTs.

No database is used, so it runs without bench/run.sh:

    .venv/bin/python bench/bench_scan_api.py --runs 5
    # before/after: the old code (a tree of commit 87c41d8, .venv linked) and
    # this one, in alternating child processes, one measured run each:
    mkdir /tmp/old18 && git archive 87c41d8 | tar -x -C /tmp/old18 && ln -s "$PWD/.venv" /tmp/old18/.venv
    .venv/bin/python bench/bench_scan_api.py --compare /tmp/old18 --rounds 8

``--tree DIR`` imports the project's code (http_runner and its session) from
DIR instead of this checkout; ``--compare`` runs children with and without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 5


# The scan API ---------------------------------------------------------------

class _ScanApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many POSTs
    # TCP_NODELAY, as production servers set it (gunicorn, uvicorn, nginx):
    # headers and body leave in two writes, and on a kept-alive connection
    # Nagle would hold the body back for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        body = json.dumps({"scan_id": f"scan-{payload.get('execution_id')}"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def serve() -> None:
    """The scan API process: prints its port, serves until stdin closes."""
    httpd = _Server(("127.0.0.1", 0), _ScanApi)
    print(httpd.server_address[1], flush=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sys.stdin.read()
    httpd.shutdown()


class ScanApiProcess:
    def __enter__(self) -> "ScanApiProcess":
        self.process = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/scans"
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


# The client -----------------------------------------------------------------

def setup_django(tree: Path, url: str) -> None:
    sys.path.insert(0, str(tree))
    os.environ["DJANGO_SETTINGS_MODULE"] = "scanner_project.settings"
    os.environ.update({"SCAN_API_URL": url, "SCAN_API_TOKEN": "bench-token", "MAX_WORKERS": str(WORKERS),
                       "LOG_LEVEL": "warning"})
    import django

    django.setup()


def post_many(count: int) -> list[float]:
    """``count`` POSTs through http_runner from WORKERS threads; each POST's seconds."""
    from schedules.scans.http_api import http_runner
    from schedules.scans.request import ScanRequest

    schedule = uuid.uuid4()
    slot = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    left = iter(range(count))
    lock = threading.Lock()
    seconds: list[float] = []
    errors: list[BaseException] = []

    def worker() -> None:
        mine = []
        while True:
            with lock:
                n = next(left, None)
            if n is None:
                break
            request = ScanRequest(schedule_id=schedule, execution_id=uuid.uuid4(), domain=f"site{n}.example.com",
                                  domain_config_id=f"bench-{n}", scheduled_for=slot, scan_settings={"maxPages": 5})
            started = time.perf_counter()
            try:
                result = http_runner(request)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                break
            mine.append(time.perf_counter() - started)
            assert result.scan_id == f"scan-{request.execution_id}"
        with lock:
            seconds.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{len(errors)} POSTs failed, the first: {errors[0]!r}")
    return seconds


def measure(posts: int) -> dict:
    from bench.stats import summary

    cpu, wall = time.process_time(), time.perf_counter()
    seconds = post_many(posts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    latency = summary(seconds)
    return {"posts_per_s": posts / wall, "cpu_ms_per_scan": cpu / posts * 1000, "wall": wall,
            "latency_ms": {k: v * 1000 for k, v in latency.items()}}


def client(args) -> list[dict]:
    setup_django(Path(args.tree).resolve() if args.tree else ROOT, args.url)
    post_many(args.warmup)  # the pool (if any) is built, code paths are warm
    results = []
    for run in range(args.runs):
        result = measure(args.posts)
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            lat = result["latency_ms"]
            print(f"run {run + 1}: {result['posts_per_s']:.0f} POSTs/s, client CPU {result['cpu_ms_per_scan']:.3f} ms "
                  f"per scan, POST latency p50 {lat['median']:.2f} / p95 {lat['p95']:.2f} / p99 {lat['p99']:.2f} ms",
                  flush=True)
    return results


def report(label: str, results: list[dict]) -> float:
    """Medians over the runs, with p95/p99: of POSTs/s the slow end, of CPU the costly end."""
    sys.path.insert(0, str(ROOT))
    from bench.stats import percentile, summary

    rates = [r["posts_per_s"] for r in results]
    cpus = summary([r["cpu_ms_per_scan"] for r in results])
    p99s = summary([r["latency_ms"]["p99"] for r in results])
    print(f"{label}: {len(results)} runs; POSTs/s median {summary(rates)['median']:.0f} "
          f"(p95 {percentile(rates, 0.05):.0f}, p99 {percentile(rates, 0.01):.0f}); "
          f"client CPU per scan median {cpus['median']:.3f} ms (p95 {cpus['p95']:.3f}, p99 {cpus['p99']:.3f}); "
          f"POST latency p99, median of runs {p99s['median']:.2f} ms")
    return summary(rates)["median"]


def compare(args) -> None:
    """Alternating child processes, the old tree and this one, one measured run each."""
    old_tree = str(Path(args.compare).resolve())
    found = {"old": [], "new": []}
    with ScanApiProcess() as api:
        for round_ in range(args.rounds):
            order = [("old", old_tree), ("new", "")] if round_ % 2 == 0 else [("new", ""), ("old", old_tree)]
            for label, tree in order:
                command = [sys.executable, __file__, "--url", api.url, "--posts", str(args.posts),
                           "--warmup", str(args.warmup), "--runs", "1", "--json"]
                if tree:
                    command += ["--tree", tree]
                out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
                result = json.loads(out.strip().splitlines()[-1])
                found[label].append(result)
                print(f"round {round_ + 1} {label}: {result['posts_per_s']:.0f} POSTs/s, "
                      f"CPU {result['cpu_ms_per_scan']:.3f} ms/scan, latency p99 {result['latency_ms']['p99']:.2f} ms",
                      flush=True)
    print(f"\n{args.posts} POSTs per run from {WORKERS} threads, HTTP/1.1 keep-alive scan API on 127.0.0.1")
    old_rate = report(f"old ({args.compare})", found["old"])
    new_rate = report("new (this tree)", found["new"])
    from bench.stats import summary

    cpu_ratio = (summary([r["cpu_ms_per_scan"] for r in found["new"]])["median"]
                 / summary([r["cpu_ms_per_scan"] for r in found["old"]])["median"])
    print(f"new / old: {new_rate / old_rate:.2f} x the POSTs/s, {cpu_ratio:.2f} x the CPU per scan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=3000, help="POSTs per measured run")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", help="import the project's code from this tree (an older commit)")
    parser.add_argument("--compare", metavar="OLD_TREE", help="alternate child processes: OLD_TREE and this tree")
    parser.add_argument("--rounds", type=int, default=6, help="with --compare: measured runs of each")
    parser.add_argument("--url", help=argparse.SUPPRESS)  # a running scan API (the --compare children)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    if args.compare:
        return compare(args)
    if args.url:
        client(args)
        return
    with ScanApiProcess() as api:
        args.url = api.url
        results = client(args)
    print(f"\n{args.posts} POSTs per run from {WORKERS} threads, HTTP/1.1 keep-alive scan API on 127.0.0.1, "
          f"code from {args.tree or 'this tree'}")
    report("result", results)


if __name__ == "__main__":
    main()

"""The browser scanner through real `runscheduler` processes: a 10-page local site, MAX_WORKERS 1, 2 and 4.

The site (served by this process on loopback): a home page linking to 3
pages, each linking to 2 more (10 pages, depth 0-2). Every page sets a
header cookie and a JavaScript cookie and a localStorage key, loads a
tracker script and a pixel from a second origin (127.0.0.2, which sets
third-party cookies and a first-party one from its script), and shows a
consent banner whose "Accept" button (the schedules' accept_selector)
loads one more tracker script.

Each run starts one `runscheduler` (browser runner, PROBE_SCHEME=http,
PROBE_ALLOWED_NETWORKS=127.0.0.0/8), queues --scans manual runs ("Run now":
history.queue.queue_manual_run) of as many schedules of the site
(allow_deep_scan, scanDepth 2, maxPages 10), waits for all of them to
finish, then SIGTERMs the scheduler (alone, not its process group) and
looks for what outlived it: processes carrying its
`--scanner-runscheduler-pid=<pid>` marker (only Chromium's browser process
does) and every process seen under it. Meanwhile /proc is sampled every
--sample seconds: the RSS (PSS every fifth sample) and CPU time of
runscheduler, everything under it and everything carrying its marker. The
worker counts are interleaved (1, 2, 4, 1, 2, 4, ...) so that the load of a
shared machine falls on all of them alike. Run through bench/run.sh
(PostgreSQL and Redis); the breakdown needs no database:

    bench/run.sh bench/bench_browser.py --workers 1 2 4 --runs 3 --scans 12
    .venv/bin/python bench/bench_browser.py breakdown --scans 8 --concurrent 1   # where a page's time goes
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")
# The in-process breakdown scans the local site as runscheduler does.
os.environ.setdefault("PROBE_SCHEME", "http")
os.environ.setdefault("PROBE_ALLOWED_NETWORKS", "127.0.0.0/8")

import django  # noqa: E402

django.setup()

from bench.stats import percentile, summary  # noqa: E402
from history.models import JobExecution  # noqa: E402
from history.services import queue_manual_run  # noqa: E402
from schedules.models import Schedule, SchedulerInstance  # noqa: E402

MARKER = "--scanner-runscheduler-pid"
SITE_HOST = "127.0.0.1"
TRACKER_HOST = "127.0.0.2"
ACCEPT_SELECTOR = "#accept-cookies"
# path -> the pages it links to: 1 + 3 + 6 = 10 pages, depth 0 to 2.
LINKS = {
    "/": ["/news", "/shop", "/about"],
    "/news": ["/news/today", "/news/archive"],
    "/shop": ["/shop/cart", "/shop/offers"],
    "/about": ["/about/team", "/about/contact"],
}
PAGES = ["/", *LINKS["/"], *(p for parent in LINKS["/"] for p in LINKS[parent])]
SCAN_SETTINGS = {"allow_deep_scan": True, "scanDepth": 2, "maxPages": len(PAGES), "maxRetries": 0,
                 "accept_selector": ACCEPT_SELECTOR}
FILLER = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "</p>"
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


# --- the site ------------------------------------------------------------------
def _slug(path: str) -> str:
    return path.strip("/").replace("/", "_") or "home"


def _page(path: str, tracker: str) -> bytes:
    slug = _slug(path)
    links = "".join(f'<li><a href="{link}">{link}</a></li>' for link in LINKS.get(path, ["/"]))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Bench site {path}</title>
<script src="{tracker}/tracker.js?page={slug}"></script>
<style>#consent-banner {{ display: none; position: fixed; bottom: 0; padding: 1em; background: #eee; }}</style>
</head><body>
<div id="consent-banner">We use cookies. <button id="accept-cookies">Accept all</button></div>
<h1>Page {path}</h1>{FILLER}<nav><ul>{links}</ul></nav>
<img src="{tracker}/pixel.gif?page={slug}" alt="">
<script>
document.cookie = "js_{slug}=1; path=/; max-age=86400";
localStorage.setItem("seen_{slug}", String(Date.now()));
var banner = document.getElementById("consent-banner");
if (document.cookie.indexOf("consent=yes") < 0) banner.style.display = "block";
document.getElementById("accept-cookies").onclick = function () {{
  document.cookie = "consent=yes; path=/; max-age=86400";
  banner.style.display = "none";
  var s = document.createElement("script");
  s.src = "{tracker}/after-consent.js";
  document.head.appendChild(s);
}};
</script>
</body></html>""".encode()


TRACKER_JS = b"""document.cookie = "_trk_fp=" + Math.random().toString(36).slice(2) + "; path=/; max-age=86400";"""
AFTER_CONSENT_JS = b"""document.cookie = "_ads_fp=1; path=/; max-age=86400";
var i = new Image(); i.src = document.currentScript.src.replace("after-consent.js", "pixel.gif?after=1");"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real site
    server_version = "bench-site"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, body: bytes, content_type: str, cookies: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        site = self.server.role == "site"
        if site and path in PAGES:
            self._send(_page(path, self.server.tracker_url), "text/html; charset=utf-8",
                       [f"srv_{_slug(path)}={uuid.uuid4().hex[:8]}; Path=/; Max-Age=86400; HttpOnly"])
        elif not site and path == "/tracker.js":
            # Third-party cookies: SameSite=None needs Secure, which a loopback
            # origin is allowed (a potentially trustworthy URL).
            self._send(TRACKER_JS, "text/javascript", ["trk_uid=1; Path=/; Max-Age=86400; SameSite=None; Secure"])
        elif not site and path == "/after-consent.js":
            self._send(AFTER_CONSENT_JS, "text/javascript", ["trk_ads=1; Path=/; Max-Age=86400; SameSite=None; Secure"])
        elif not site and path == "/pixel.gif":
            self._send(PIXEL, "image/gif", ["trk_px=1; Path=/; Max-Age=86400; SameSite=None; Secure"])
        else:
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class Site:
    """The first-party site on 127.0.0.1 and the tracker on 127.0.0.2, each its own server thread."""

    def __enter__(self) -> "Site":
        self.tracker = ThreadingHTTPServer((TRACKER_HOST, 0), _Handler)
        self.tracker.role = "tracker"
        self.tracker_url = f"http://{TRACKER_HOST}:{self.tracker.server_address[1]}"
        self.site = ThreadingHTTPServer((SITE_HOST, 0), _Handler)
        self.site.role = "site"
        self.site.tracker_url = self.tracker_url
        self.domain = f"{SITE_HOST}:{self.site.server_address[1]}"
        for server in (self.site, self.tracker):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self.site, self.tracker):
            server.shutdown()
            server.server_close()


# --- /proc -------------------------------------------------------------------------
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


_CMDLINES: dict[int, tuple[str, str]] = {}  # pid -> (start time, command line): read once per process


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command line, CPU ticks so far) of every process that can be read."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            started = fields[19]
            known = _CMDLINES.get(pid)
            if known is None or known[0] != started or not known[1]:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                _CMDLINES[pid] = known = (started, cmdline)
        except (OSError, IndexError):
            continue
        found[pid] = (int(fields[1]), known[1], int(fields[11]) + int(fields[12]))
    return found


def family(root: int) -> dict[int, tuple[str, int]]:
    """root, everything below it, and every process carrying root's marker:
    pid -> (command line, CPU ticks)."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cmd, _ticks) in processes.items():
        children.setdefault(ppid, []).append(pid)
    marker = f"{MARKER}={root}"
    members, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in members or pid not in processes:
            continue
        members.add(pid)
        todo.extend(children.get(pid, []))
    members |= {pid for pid, (_ppid, cmd, _ticks) in processes.items() if marker in cmd}
    return {pid: processes[pid][1:] for pid in members}


def marked(root: int) -> list[int]:
    marker = f"{MARKER}={root}"
    return sorted(pid for pid, (_ppid, cmd, _ticks) in _processes().items() if marker in cmd)


def still_running(pids: dict[int, str]) -> list[int]:
    """The pids (pid -> kind when sampled) that still run the same kind of program."""
    left = []
    for pid, kind in pids.items():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd and _kind(cmd) == kind:
            left.append(pid)
    return sorted(left)


def _cpu_busy() -> tuple[int, int]:
    """(busy, total) ticks of the whole machine so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0  # gone meanwhile


def _pss(pid: int) -> int:
    """Proportional set size: a page shared by k processes counts 1/k in each.
    Dearer to read than RSS (the kernel walks the mappings)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kind(cmd: str) -> str:
    if "manage.py runscheduler" in cmd:
        return "runscheduler"
    if "chromium" in cmd or "chrome" in cmd:
        kind = next((part[len("--type="):] for part in cmd.split() if part.startswith("--type=")), "browser")
        return f"chromium-{kind}"
    if "playwright" in cmd or "/node " in cmd:
        return "playwright-driver"
    return cmd.split(" ", 1)[0].rsplit("/", 1)[-1] or "?"


class MemorySampler(threading.Thread):
    """Samples the family of one process every ``interval`` s (PSS every
    ``pss_every``-th sample, it costs more); keeps the peaks."""

    def __init__(self, root: int, interval: float, pss_every: int = 5) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.root, self.interval, self.pss_every = root, interval, pss_every
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = self.peak_processes = self.peak_marked = self.samples = 0
        self.peak_by_kind: dict[str, list[int]] = {}  # kind -> [processes, RSS] at the peak
        self.sample_seconds = 0.0
        self.ticks: dict[int, int] = {}  # pid -> its CPU ticks when last seen
        self.kinds: dict[int, str] = {}

    def cpu_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, ticks in self.ticks.items():
            out[self.kinds[pid]] = out.get(self.kinds[pid], 0.0) + ticks / CLOCK_TICKS
        return out

    @property
    def cpu_seconds(self) -> float:
        """CPU time of the family while sampled (a process's last ~0.2 s before it exits is missed)."""
        return sum(self.ticks.values()) / CLOCK_TICKS

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            members = family(self.root)
            rss = 0
            by_kind: dict[str, list[int]] = {}
            for pid, (cmd, ticks) in members.items():
                self.ticks[pid] = max(self.ticks.get(pid, 0), ticks)
                self.kinds.setdefault(pid, _kind(cmd))
                r = _rss(pid)
                rss += r
                entry = by_kind.setdefault(_kind(cmd), [0, 0])
                entry[0] += 1
                entry[1] += r
            if rss > self.peak_rss:
                self.peak_rss, self.peak_by_kind = rss, by_kind
            if self.samples % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, sum(_pss(pid) for pid in members))
            self.peak_processes = max(self.peak_processes, len(members))
            marker = f"{MARKER}={self.root}"
            self.peak_marked = max(self.peak_marked, sum(marker in cmd for cmd, _ticks in members.values()))
            self.samples += 1
            self.sample_seconds += time.monotonic() - started
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


# --- one run -----------------------------------------------------------------------
def make_schedules(count: int, domain: str) -> None:
    Schedule.objects.all().delete()
    JobExecution.objects.all().delete()
    SchedulerInstance.objects.all().delete()
    # Far-future `once` slots: the schedules are loaded (a manual run needs
    # its schedule's spec) and never fire by themselves.
    at = (datetime.now(timezone.utc) + timedelta(days=30)).replace(microsecond=0)
    Schedule.objects.bulk_create(
        Schedule(domain_config_id=f"bench-browser-{n}", domain=domain, frequency="once",
                 time_config={"at": at.isoformat()}, next_run=at, scan_settings=SCAN_SETTINGS)
        for n in range(count)
    )


def start_scheduler(workers: int, log_path: Path, grace: int) -> subprocess.Popen:
    env = {**os.environ, "SCAN_RUNNER": "", "SCAN_API_URL": "", "MAX_WORKERS": str(workers),
           "PROBE_SCHEME": "http", "PROBE_ALLOWED_NETWORKS": "127.0.0.0/8", "LOG_LEVEL": "info",
           "SHUTDOWN_GRACE_SECONDS": str(grace)}
    log = open(log_path, "wb")
    try:
        return subprocess.Popen([sys.executable, "manage.py", "runscheduler", "--instance-id", f"bench-w{workers}"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()


def wait_loaded(process: subprocess.Popen, expected_jobs: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not SchedulerInstance.objects.filter(jobs_loaded=expected_jobs, stopped_at__isnull=True).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"runscheduler did not load its jobs (exit {process.poll()}):\n{_tail(log_path)}")
        time.sleep(0.1)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _own_cpu() -> float:
    """CPU seconds of this process (the site, the poller, the sampler)."""
    times = os.times()
    return times.user + times.system


def _max_concurrent(rows: list[dict]) -> int:
    events = sorted([(r["started_at"], 1) for r in rows] + [(r["completed_at"], -1) for r in rows],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _at, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_once(*, site: Site, workers: int, scans: int, timeout: float, sample: float, grace: int,
             log_dir: Path, label: str) -> dict:
    make_schedules(scans, site.domain)
    log_path = log_dir / f"{label}.log"
    process = start_scheduler(workers, log_path, grace)
    sampler = MemorySampler(process.pid, sample)
    sampler.start()
    load_before = _loadavg()
    try:
        wait_loaded(process, scans, log_path)
        queued_at = datetime.now(timezone.utc)
        cpu_before, busy_before, own_before = sampler.cpu_seconds, _cpu_busy(), _own_cpu()
        cpu_by_kind_before = sampler.cpu_by_kind()
        for schedule in Schedule.objects.order_by("domain_config_id"):
            queue_manual_run(schedule_id=schedule.schedule_id, domain=schedule.domain,
                             domain_config_id=schedule.domain_config_id, requested_by="bench")
        deadline = time.monotonic() + timeout
        while JobExecution.objects.filter(status__in=("queued", "running")).exists():
            if process.poll() is not None:
                raise SystemExit(f"runscheduler exited with {process.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the scans did not finish within {timeout:g} s:\n{_tail(log_path)}")
            time.sleep(0.2)
        load_after = _loadavg()
        time.sleep(sample)  # one more sample
        cpu_after, busy_after, own_after = sampler.cpu_seconds, _cpu_busy(), _own_cpu()
        cpu_by_kind = sampler.cpu_by_kind()
    finally:
        # SIGTERM to runscheduler alone, not its group: it must close its browser itself.
        stop_started = time.monotonic()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=grace + 30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            exit_code = process.wait()
        stop_seconds = time.monotonic() - stop_started
        sampler.stop.set()
        sampler.join()
        # The marker is on the browser process's command line only; its
        # zygotes, renderers and utility processes (and Playwright's driver)
        # are known from the samples of the process tree.
        tree = {pid: kind for pid, kind in sampler.kinds.items() if pid != process.pid}
        left_at_exit = sorted(set(marked(process.pid)) | set(still_running(tree)))
        time.sleep(2)
        left_later = sorted(set(marked(process.pid)) | set(still_running(tree)))
        for pid in left_later:  # processes this scheduler started and left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    rows = list(JobExecution.objects.filter(trigger="manual").order_by("started_at")
                .values("status", "started_at", "completed_at", "duration_seconds", "metadata", "error_message"))
    failed = [r for r in rows if r["status"] != "success"]
    done = [r for r in rows if r["status"] == "success"]
    last_done = max(r["completed_at"] for r in rows)
    drain = (last_done - queued_at).total_seconds()
    durations = [r["duration_seconds"] for r in done]
    pages = [len(r["metadata"]["scan"]["pages"]) for r in done]
    per_page = [d / p for d, p in zip(durations, pages, strict=True) if p]
    first, rest = (durations[0], durations[1:]) if durations else (None, [])
    scan = done[0]["metadata"]["scan"] if done else {}
    cookies = scan.get("cookies", [])
    machine_busy = (busy_after[0] - busy_before[0]) / CLOCK_TICKS
    machine_total = (busy_after[1] - busy_before[1]) / CLOCK_TICKS
    family_cpu = cpu_after - cpu_before
    return {
        "cpu_per_scan": family_cpu / max(1, len(done)), "family_cpu": family_cpu,
        "machine_busy": machine_busy / machine_total if machine_total else 0.0,
        "others_cpu": machine_busy - family_cpu - (own_after - own_before), "bench_cpu": own_after - own_before,
        "max_concurrent": _max_concurrent(done),
        "cpu_by_kind": {k: round(v - cpu_by_kind_before.get(k, 0.0), 1) for k, v in sorted(cpu_by_kind.items())},
        "workers": workers, "scans": scans, "succeeded": len(done), "failed": [r["error_message"] for r in failed],
        "drain": drain, "per_minute": len(done) / drain * 60, "durations": durations, "pages": pages,
        "per_page": per_page, "first": first, "rest_median": statistics.median(rest) if rest else None,
        "runner_seconds": [r["metadata"].get("seconds") for r in done],
        "peak_rss": sampler.peak_rss, "peak_pss": sampler.peak_pss, "peak_processes": sampler.peak_processes,
        "peak_marked": sampler.peak_marked,
        "peak_by_kind": sampler.peak_by_kind, "samples": sampler.samples,
        "sample_ms": 1000 * sampler.sample_seconds / max(1, sampler.samples),
        "exit_code": exit_code, "stop_seconds": stop_seconds, "tree_seen": len(tree),
        "left_at_exit": left_at_exit, "left_later": left_later,
        "load": (load_before, load_after),
        "first_scan": {
            "pages": len(scan.get("pages", [])), "statuses": sorted({p.get("status") for p in scan.get("pages", [])},
                                                                   key=str),
            "cookies": len(cookies), "third_party_cookies": sum(c["third_party"] for c in cookies),
            "after_consent_cookies": sum(c["phase"] == "after_consent" for c in cookies),
            "storage": len(scan.get("storage", [])), "hosts": sorted({r["host"] for r in scan.get("requests", [])}),
            "consent": scan.get("consent"), "refused": scan.get("refused"),
        },
    }


def _mb(value: float) -> str:
    return f"{value / 1e6:.0f} MB"


def bench(args) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    results: dict[int, list[dict]] = {w: [] for w in args.workers}
    started = time.monotonic()
    with Site() as site:
        print(f"site http://{site.domain}/ ({len(PAGES)} pages), tracker {site.tracker_url}; "
              f"{os.cpu_count()} CPUs; logs in {log_dir}", flush=True)
        for run in range(args.runs):
            for workers in args.workers:
                label = f"run{run + 1}-w{workers}"
                r = run_once(site=site, workers=workers, scans=args.scans, timeout=args.timeout, sample=args.sample,
                             grace=args.grace, log_dir=log_dir, label=label)
                results[workers].append(r)
                s = summary(r["per_page"]) if r["per_page"] else {"median": 0, "p95": 0}
                print(f"{label}: {r['succeeded']}/{r['scans']} scans in {r['drain']:.1f} s = "
                      f"{r['per_minute']:.1f} scans/min; scan median {statistics.median(r['durations']):.2f} s, "
                      f"{statistics.median(r['pages']):.0f} pages, s/page median {s['median']:.3f} p95 {s['p95']:.3f}; "
                      f"first scan {r['first']:.2f} s vs rest median {r['rest_median'] or 0:.2f} s; "
                      f"peak RSS {_mb(r['peak_rss'])} (PSS {_mb(r['peak_pss'])}, {r['peak_processes']} processes, "
                      f"{r['samples']} samples of {r['sample_ms']:.0f} ms); exit {r['exit_code']} after SIGTERM in "
                      f"{r['stop_seconds']:.1f} s, Chromium with the marker: up to {r['peak_marked']} while scanning; of the "
                      f"marked and the {r['tree_seen']} processes seen under runscheduler, left: {len(r['left_at_exit'])} at exit, "
                      f"{len(r['left_later'])} 2 s later; load {r['load'][0]:.1f} -> {r['load'][1]:.1f}; "
                      f"up to {r['max_concurrent']} scans at once; CPU: scheduler+browser {r['family_cpu']:.1f} s "
                      f"({r['cpu_per_scan']:.2f} s/scan), this process {r['bench_cpu']:.1f} s, other work "
                      f"{r['others_cpu']:.1f} s; machine {100 * r['machine_busy']:.0f} % busy"
                      + (f"; FAILED: {r['failed'][:3]}" if r["failed"] else ""), flush=True)
                if run == 0:
                    if workers == args.workers[0]:
                        print(f"  first scan recorded: {json.dumps(r['first_scan'])}", flush=True)
                    print(f"  CPU seconds by process kind while scanning: {r['cpu_by_kind']}", flush=True)
                    print(f"  RSS at the peak by process kind: "
                          f"{ {k: f'{n} x, {_mb(v)}' for k, (n, v) in sorted(r['peak_by_kind'].items())} }", flush=True)
    report(results, args, time.monotonic() - started)
    if args.json:
        Path(args.json).write_text(json.dumps({str(w): rs for w, rs in results.items()}, default=str, indent=1))


def report(results: dict[int, list[dict]], args, elapsed: float) -> None:
    print(f"\n{args.runs} run(s) per worker count, {args.scans} scans of {len(PAGES)} pages each, "
          f"{elapsed / 60:.1f} min in all. Medians over runs; s/page and scan durations pooled over runs.\n")
    print("| MAX_WORKERS | scans/min (runs) | median | s/page median / p95 / p99 | scan s median / p95 / p99 "
          "| peak RSS sum median (max) | peak PSS median (max) | CPU s/scan | machine busy | processes left after SIGTERM |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for workers, runs in results.items():
        rates = [r["per_minute"] for r in runs]
        per_page = [x for r in runs for x in r["per_page"]]
        durations = [x for r in runs for x in r["durations"]]
        rss = [r["peak_rss"] for r in runs]
        pss = [r["peak_pss"] for r in runs]
        medians[workers] = statistics.median(rates)
        pp, du = summary(per_page), summary(durations)
        left = sum(len(r["left_at_exit"]) for r in runs)
        print(f"| {workers} | {', '.join(f'{x:.1f}' for x in rates)} | {medians[workers]:.1f} "
              f"| {pp['median']:.3f} / {pp['p95']:.3f} / {pp['p99']:.3f} "
              f"| {du['median']:.2f} / {du['p95']:.2f} / {du['p99']:.2f} "
              f"| {statistics.median(rss) / 1e6:.0f} MB ({max(rss) / 1e6:.0f} MB) "
              f"| {statistics.median(pss) / 1e6:.0f} MB ({max(pss) / 1e6:.0f} MB) "
              f"| {statistics.median(r['cpu_per_scan'] for r in runs):.2f} "
              f"| {statistics.median(100 * r['machine_busy'] for r in runs):.0f} % "
              f"| {left} in {len(runs)} runs (exit codes {sorted({r['exit_code'] for r in runs})}) |")
    if 1 in results:
        firsts = [r["first"] for r in results[1]]
        rests = [r["rest_median"] for r in results[1]]
        print(f"\nFirst scan at MAX_WORKERS=1 (pays the browser start): "
              f"{', '.join(f'{f:.2f} s vs {m:.2f} s' for f, m in zip(firsts, rests, strict=True))} (first vs median of the rest); "
              f"median extra {statistics.median(f - m for f, m in zip(firsts, rests, strict=True)):.2f} s")
    if 1 in medians and 4 in medians:
        ratio = medians[4] / medians[1]
        print(f"Target 4 workers >= 1.5 x 1 worker: {ratio:.2f} x -> {'met' if ratio >= 1.5 else 'NOT met'}")
    if 4 in results:
        worst = max(r["peak_rss"] for r in results[4])
        worst_pss = max(r["peak_pss"] for r in results[4])
        print(f"Target peak RSS <= 1.5 GB at 4 workers: RSS summed over the processes, max {worst / 1e9:.2f} GB -> "
              f"{'met' if worst <= 1.5e9 else 'NOT met'}; PSS (shared pages counted once), max "
              f"{worst_pss / 1e9:.2f} GB -> {'met' if worst_pss <= 1.5e9 else 'NOT met'}")


# --- in process: where a page's time goes --------------------------------------------
def breakdown(args) -> None:
    """Scans the site with a BrowserScanner in this process, timing the
    Playwright calls the visit makes (a wrapper on each, nothing else changed)."""
    from concurrent.futures import ThreadPoolExecutor

    from playwright.async_api import Browser, BrowserContext, Locator, Page

    from schedules.scans import visit as visit_module
    from schedules.scans.browser import BrowserScanner
    from schedules.scans.config import ScanConfig
    from schedules.scans.request import ScanRequest

    timings: dict[str, list[float]] = {}

    def timed(owner, name: str, label: str):
        original = getattr(owner, name)

        async def wrapper(*a, **kw):
            t0 = time.monotonic()
            try:
                return await original(*a, **kw)
            finally:
                timings.setdefault(label, []).append(time.monotonic() - t0)

        setattr(owner, name, wrapper)

    timed(Browser, "new_context", "new_context")
    timed(BrowserContext, "new_page", "new_page")
    timed(BrowserContext, "close", "context.close")
    timed(BrowserContext, "cookies", "context.cookies")
    timed(Page, "goto", "goto (load)")
    timed(Page, "eval_on_selector_all", "links")
    timed(Locator, "click", "consent click")
    timed(visit_module.Visit, "_read_storage", "localStorage read")
    settle, consent = visit_module.Visit._settle, visit_module.Visit._consent

    async def settle_timed(self, page):
        t0 = time.monotonic()
        try:
            return await settle(self, page)
        finally:
            label = "settle after the consent click" if getattr(self, "_bench_consent", False) else \
                "settle after load (networkidle)"
            timings.setdefault(label, []).append(time.monotonic() - t0)

    async def consent_timed(self, page, **kw):
        t0, self._bench_consent = time.monotonic(), True
        try:
            return await consent(self, page, **kw)
        finally:
            self._bench_consent = False
            timings.setdefault("consent (find, click, settle)", []).append(time.monotonic() - t0)

    visit_module.Visit._settle, visit_module.Visit._consent = settle_timed, consent_timed
    timed(BrowserScanner, "_browser", "browser (start on first use)")

    scanner = BrowserScanner.from_config(ScanConfig.from_settings())
    with Site() as site:
        def one(n: int) -> float:
            request = ScanRequest(schedule_id=uuid.uuid4(), execution_id=uuid.uuid4(), domain=site.domain,
                                  domain_config_id=f"breakdown-{n}", scheduled_for=None, scan_settings=SCAN_SETTINGS)
            t0 = time.monotonic()
            result = scanner(request)
            assert len(result.metadata["scan"]["pages"]) == len(PAGES), result.metadata["scan"]["pages"]
            return time.monotonic() - t0

        try:
            first = one(0)
            start = timings.get("browser (start on first use)", [0.0])[0]
            timings.clear()  # the first scan pays the start; the rest are the steady state
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.concurrent) as pool:
                durations = list(pool.map(one, range(1, args.scans + 1)))
            wall = time.monotonic() - t0
        finally:
            scanner.close()
    pages = args.scans * len(PAGES)
    print(f"first scan {first:.2f} s (starting the browser: {start:.2f} s); then {args.scans} scans, {args.concurrent} at a time, in {wall:.1f} s: "
          f"scan median {statistics.median(durations):.2f} s, {statistics.median(durations) / len(PAGES):.3f} s/page")
    print("| call | calls per scan | median ms | p95 ms | share of scan time (sum / sum of scan durations) |")
    print("|---|---|---|---|---|")
    total = sum(durations)
    for label, values in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {label} | {len(values) / args.scans:.1f} | {1000 * statistics.median(values):.0f} "
              f"| {1000 * percentile(values, 0.95):.0f} | {100 * sum(values) / total:.0f} % |")
    print(f"({pages} pages)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", nargs="?", choices=("bench", "breakdown"), default="bench")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scans", type=int, default=12, help="manual runs queued per run")
    parser.add_argument("--timeout", type=float, default=240, help="seconds for one run's scans to finish")
    parser.add_argument("--sample", type=float, default=0.2, help="seconds between /proc samples")
    parser.add_argument("--grace", type=int, default=30, help="SHUTDOWN_GRACE_SECONDS")
    parser.add_argument("--concurrent", type=int, default=1, help="breakdown: scans at once")
    parser.add_argument("--json", help="write every run's numbers to this file")
    args = parser.parse_args()
    if args.mode == "breakdown":
        breakdown(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()

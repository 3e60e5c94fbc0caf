"""A small site built like a real one, for the browser scanner's tests.

Each "host" is its own server on a loopback address, so first and third
party are different registrable domains (127.0.0.1 and 127.0.0.2):
- ``site``: the first party. The home page sets a server cookie (sid), two
  Google-Analytics-style cookies and a localStorage key from JavaScript, loads
  a tracker script from the tracker host, and shows a consent banner whose
  "Accept" button sets a consent cookie and loads more trackers. Its pages
  link two levels deep and on to a third; /custom is linked from nowhere.
- ``tracker``: the third party; its script sets a cookie from JavaScript and
  one by Set-Cookie (a third-party cookie), and it records every request.
- ``cmp``: a home page with a OneTrust-style banner (no accept_selector needed).
- ``redirect``: a home page that redirects to the tracker host.
- ``stall``: a home page that never finishes loading; ``spin``: one whose script loops.
"""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field

HOSTS = {"site": "127.0.0.1", "tracker": "127.0.0.2", "cmp": "127.0.0.3", "redirect": "127.0.0.4",
         "stall": "127.0.0.5", "spin": "127.0.0.6"}

BANNER = """<div id="banner"><p>We use cookies.</p>
<button id="accept" onclick="acceptAll()">Accept</button></div>
<script>
function acceptAll() {
  document.cookie = "consent=yes; path=/; max-age=31536000";
  localStorage.setItem("consent_at", String(Date.now()));
  var s = document.createElement("script"); s.src = "TRACKER/ads.js"; document.body.appendChild(s);
  var i = new Image(); i.src = "TRACKER/pixel.gif?after=1";
  document.getElementById("banner").remove();
}
</script>"""

HOME = """<!doctype html><html><head><title>Home</title></head><body>
<h1>Home</h1><a href="/level1">Level 1</a> <a href="#top">top</a> <a href="TRACKER/elsewhere">partner</a>
<script>
document.cookie = "_ga=GA1.1.123.456; path=/; max-age=63072000";
document.cookie = "_gid=GA1.1.789; path=/; max-age=86400";
localStorage.setItem("ga_client", "123.456");
</script>
<script src="TRACKER/tracker.js"></script>
BANNER
</body></html>"""

PAGES = {
    "/level1": '<h1>Level 1</h1><a href="/level2">Level 2</a><a href="/">home</a>',
    "/level2": '<h1>Level 2</h1><a href="/level3">Level 3</a>',
    "/level3": '<h1>Level 3</h1><script>document.cookie="depth3=1; path=/"</script>',
    "/custom": "<h1>Custom</h1>",
    # Every kind of request, to the tracker host and the cloud metadata address.
    "/forbidden": '<h1>Forbidden refs</h1><img src="TRACKER/pixel.gif?forbidden=1">'
                  '<iframe src="TRACKER/frame"></iframe>'
                  '<img src="http://169.254.169.254/latest/meta-data/">'
                  '<script>fetch("http://169.254.169.254/latest/api/token").catch(function(){});'
                  'fetch("TRACKER/xhr").catch(function(){});'
                  'try { new WebSocket("TRACKER/ws".replace("http", "ws")); } catch (e) {}</script>',
}
PAGE_COOKIES = {"/level1": "lvl1=1; Path=/", "/level2": "lvl2=1; Path=/", "/custom": "custom_page=1; Path=/"}

TRACKER_JS = 'document.cookie = "_tracker_js=1; path=/; max-age=3600";'
ADS_JS = 'document.cookie = "_fbp=fb.1.2; path=/; max-age=7776000";'

CMP_HOME = """<!doctype html><html><body><h1>CMP</h1>
<div id="onetrust-banner-sdk"><button id="onetrust-accept-btn-handler"
 onclick="document.cookie='OptanonAlertBoxClosed=1; path=/'">Accept All</button></div></body></html>"""


@dataclass
class Hit:
    path: str
    at: float


@dataclass
class Host:
    name: str
    address: str
    server: http.server.ThreadingHTTPServer
    hits: list[Hit] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def domain(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.domain}"


class ScanSite:
    """All hosts, started together on one port per address."""

    def __init__(self) -> None:
        # The site changes between two scans: the ad tracker loads with the
        # page, before the visitor consents.
        self.ads_before_consent = False
        self.hosts: dict[str, Host] = {}
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "ScanSite":
        for name, address in HOSTS.items():
            server = http.server.ThreadingHTTPServer((address, 0), _handler_for(self, name))
            server.daemon_threads = True
            self.hosts[name] = Host(name, address, server)
            thread = threading.Thread(target=server.serve_forever, name=f"scan-site-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        for host in self.hosts.values():
            host.server.shutdown()
            host.server.server_close()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def html(self, text: str) -> bytes:
        if self.ads_before_consent:
            text = text.replace("BANNER", '<script src="TRACKER/ads.js"></script>BANNER')
        return (text.replace("BANNER", BANNER).replace("TRACKER", self["tracker"].origin)).encode()


def _handler_for(site: ScanSite, name: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            site.hosts[name].hits.append(Hit(self.path, time.monotonic()))
            getattr(self, f"_{name}")()

        def _send(self, status: int, body: bytes, content_type: str = "text/html", cookies=(), headers=()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for cookie in cookies:
                self.send_header("Set-Cookie", cookie)
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _site(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, site.html(HOME), cookies=["sid=s3cr3t; Path=/; HttpOnly; SameSite=Lax"])
            elif path in PAGES:
                cookies = [PAGE_COOKIES[path]] if path in PAGE_COOKIES else []
                self._send(200, site.html(f"<!doctype html><html><body>{PAGES[path]}</body></html>"), cookies=cookies)
            else:
                self._send(404, b"<h1>not found</h1>")

        def _tracker(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/tracker.js":
                self._send(200, TRACKER_JS.encode(), "application/javascript",
                           cookies=["tp_uid=u-1; Path=/; Max-Age=31536000; SameSite=None; Secure"])
            elif path == "/ads.js":
                self._send(200, ADS_JS.encode(), "application/javascript",
                           cookies=["ads_id=a-1; Path=/; Max-Age=31536000; SameSite=None; Secure"])
            elif path == "/pixel.gif":
                self._send(200, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif")
            else:
                self._send(200, b"<h1>tracker</h1>")

        def _cmp(self) -> None:
            self._send(200, CMP_HOME.encode())

        def _redirect(self) -> None:
            self._send(302, b"", headers=[("Location", f"{site['tracker'].origin}/")])

        def _stall(self) -> None:
            # Headers, the start of a body, then nothing more until the client gives up.
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"<html><body><h1>loading")
            self.wfile.flush()
            for _ in range(600):
                time.sleep(0.1)
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return

        def _spin(self) -> None:
            self._send(200, b"<html><body><script>while (true) {}</script></body></html>")

    return Handler

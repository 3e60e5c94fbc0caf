"""A real HTTP server on 127.0.0.1 that plays the upstream schedule API.

Each path is given a behaviour; the sync code talks to it over real sockets.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXAMPLE = json.loads((Path(__file__).parent / "fixtures" / "api_example.json").read_text())

Behaviour = Callable[[BaseHTTPRequestHandler, "ApiServer"], None]


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def json_answer(payload, status: int = 200) -> Behaviour:
    body = json.dumps(payload).encode()
    return lambda handler, server: send(handler, status, body)


def sequence(*behaviours: Behaviour) -> Behaviour:
    """The nth request gets the nth behaviour; the last one repeats."""
    calls = iter(range(10**6))

    def behave(handler, server):
        behaviours[min(next(calls), len(behaviours) - 1)](handler, server)

    return behave


def drip(handler, server) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000000")
    handler.end_headers()
    _trickle(handler, server, b" ", every=0.02)


def _trickle(handler, server, byte: bytes, *, every: float) -> None:
    try:
        while not server.stop.is_set():
            handler.wfile.write(byte)
            handler.wfile.flush()
            time.sleep(every)  # the pace of a slow server, not a wait for a condition
    except OSError:
        pass  # the client gave up, as it should


def hang(handler, server) -> None:
    server.stop.wait(30)


def huge_without_length(handler, server) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()  # no Content-Length: the body ends when the connection closes
    try:
        handler.wfile.write(b'{"data": [')
        for _ in range(200):
            handler.wfile.write(b" " * 65536)
    except OSError:
        pass


def huge_with_length(handler, server) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(50 * 1024 * 1024))
    handler.end_headers()


def trickle_headers(handler, server) -> None:
    """Headers a byte at a time, never finishing: no read timeout ever fires."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    _trickle(handler, server, b"a", every=0.1)


class ApiServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: "ssl.SSLContext | None" = None,
                 protocol: str = "HTTP/1.0") -> None:
        """``protocol="HTTP/1.1"`` keeps connections alive (every answer carries a Content-Length)."""
        self.routes: dict[str, Behaviour] = {}
        self.hits: Counter[str] = Counter()
        self.authorization: list[str | None] = []
        self.bodies: list[bytes] = []
        self.stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = protocol

            def do_GET(self):
                path = self.path.split("?")[0]
                api.hits[path] += 1
                api.hosts.append(self.headers.get("Host"))
                api.authorization.append(self.headers.get("Authorization"))
                behaviour = api.routes.get(path)
                if behaviour is None:
                    send(self, 404, b'{"detail": "not found"}')
                else:
                    behaviour(self, api)

            def do_POST(self):
                path = self.path.split("?")[0]
                api.hits[path] += 1
                api.authorization.append(self.headers.get("Authorization"))
                api.keys.append(self.headers.get("Idempotency-Key"))
                length = int(self.headers.get("Content-Length") or 0)
                self.request_body = self.rfile.read(length)
                api.bodies.append(self.request_body)
                behaviour = api.routes.get(path)
                if behaviour is None:
                    send(self, 404, b'{"detail": "not found"}')
                else:
                    behaviour(self, api)

            def log_message(self, *args):
                pass

        self.host = host
        self.connections = 0  # accepted TCP connections, requests or not
        self.keys: list[str | None] = []  # Idempotency-Key of each POST

        class Server(ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                api.connections += 1
                return True

        self.httpd = Server((host, port), Handler)
        self.server_names: list[str | None] = []  # TLS SNI, one per handshake
        self.hosts: list[str | None] = []  # Host headers
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        scheme = "https" if isinstance(self.httpd.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def serve(self, path: str, behaviour: Behaviour) -> str:
        self.routes[path] = behaviour
        return self.url(path)

    def serve_json(self, path: str, payload, status: int = 200) -> str:
        return self.serve(path, json_answer(payload, status))

    def __enter__(self) -> "ApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def tls_context(directory: Path, name: str) -> tuple[ssl.SSLContext, str]:
    """A server context with a self-signed certificate for ``name`` only (made
    with openssl), and the certificate's path for a client to trust."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, str(cert)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/schedules"


def entry(dcid: str, domain: str = "example.com", *, schedule="default", **settings) -> dict:
    data = {"domain": domain, **settings}
    if schedule == "default":
        schedule = {"frequency": "daily", "time": {"hour": 2, "minute": 0}}
    if schedule is not ...:
        data["schedule"] = schedule
    return {"domain_config_id": dcid, "data": data}


def many(count: int, *, hour: int = 2) -> dict:
    return {
        "data": [
            entry(f"cfg-{n:05}", f"site{n}.example.com", maxPages=n % 100,
                  schedule={"frequency": "daily", "time": {"hour": hour, "minute": n % 60}})
            for n in range(count)
        ]
    }

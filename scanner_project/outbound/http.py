"""Outbound HTTP, bounded: one place for sessions, retries, deadlines and size caps.

Used by the API importer (schedules.importer.client) and the scan runners. Every
outbound call has one ``Deadline`` that covers connecting, TLS, waiting for
headers and reading the body: read timeouts alone let a server that trickles
a byte a second hold a call forever. Every connection resolves its host once,
through ``scanner_project.outbound.addresses``, and connects to exactly an address that was
resolved (and, for the probe, checked), keeping the name for the Host header
and TLS SNI.

Two kinds of session:
- ``build_session`` (here): built for one call, its connections die with it
  (the importer, the probe, alert webhooks).
- ``PooledSession`` (scanner_project.outbound.pool): one keep-alive pool per process for
  one service (the scan API), shared by every worker thread.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from scanner_project.outbound import addresses

logger = logging.getLogger(__name__)

RETRY_STATUSES = (500, 502, 503, 504)
_CHUNK_BYTES = 64 * 1024


class ResponseTooLarge(Exception):
    pass


class DeadlineExceeded(Exception):
    pass


class _Watchdog:
    """The one thread that ends every Deadline of the process at its time
    (a Timer thread per call would start a thread for every outbound call)."""

    def __init__(self) -> None:
        self._start()
        os.register_at_fork(after_in_child=self._start)  # a child has none of the parent's threads

    def _start(self) -> None:
        self._wake = threading.Condition(threading.Lock())
        self._live: set[Deadline] = set()
        self._next_wake = math.inf
        self._thread: threading.Thread | None = None

    def add(self, deadline: "Deadline") -> None:
        with self._wake:
            self._live.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            if deadline.ends_at < self._next_wake:
                self._wake.notify()

    def discard(self, deadline: "Deadline") -> None:
        with self._wake:
            self._live.discard(deadline)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [deadline for deadline in self._live if deadline.ends_at <= now]
                self._live.difference_update(due)
                if not due:
                    self._next_wake = min((deadline.ends_at for deadline in self._live), default=math.inf)
                    self._wake.wait(None if self._next_wake == math.inf else self._next_wake - now)
                    self._next_wake = math.inf  # awake: an add() meanwhile needs no notify
                    continue
            for deadline in due:  # outside the watchdog's lock: each takes its own
                try:
                    deadline._expire()
                except Exception:  # noqa: BLE001 - the thread must outlive any one deadline
                    logger.exception("Ending an HTTP deadline failed")


class Deadline:
    """One deadline for one outbound call. When it passes, every socket the
    call holds is shut down, which ends any blocking connect, TLS handshake,
    header or body read; connections opened after it raise DeadlineExceeded.
    Name resolution counts too (``_resolve_within``).

    A socket is watched until ``release(owner)`` (a pooled connection going
    back to its pool) or ``close()`` (the end of the call)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[tuple[object, socket.socket]] = []
        _WATCHDOG.add(self)

    def remaining(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    def check(self) -> None:
        if self.expired.is_set() or self.remaining() <= 0:
            raise self.error()

    def error(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"did not finish within the deadline of {self.seconds:g} s")

    def watch(self, sock: socket.socket, owner: object = None) -> None:
        # A duplicate of the descriptor, because TLS wrapping detaches the
        # original (and an SSLSocket cannot dup()); shutdown() acts on the
        # connection behind every duplicate. Taken and closed under the lock,
        # so the watchdog never shuts down a descriptor number reused meanwhile.
        with self._lock:
            if self.expired.is_set():
                sock.close()
                raise self.error()
            self._sockets.append((owner, socket.fromfd(sock.fileno(), sock.family, sock.type)))

    def release(self, owner: object) -> bool:
        """Stops watching ``owner``'s sockets. False when the deadline passed
        first, and so shut them down: that connection must not be used again."""
        with self._lock:
            kept = []
            for who, sock in self._sockets:
                if who is owner:
                    sock.close()
                else:
                    kept.append((who, sock))
            self._sockets = kept
            return not self.expired.is_set()

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            for _, sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the other side

    def close(self) -> None:
        _WATCHDOG.discard(self)
        with self._lock:
            for _, sock in self._sockets:
                sock.close()
            self._sockets.clear()


_WATCHDOG = _Watchdog()

# getaddrinfo cannot be interrupted and takes no timeout: it runs on a thread
# of its own while the caller waits no longer than its call may. A lookup that
# outlives its caller finishes there on its own, its answer unused; the thread
# is a daemon, so a hung resolver never holds up the process's exit, and one
# hung lookup never queues another behind it.
def _resolve_within(connection: HTTPConnection, deadline: Deadline, timeout: float | None, **policy) -> list:
    """``addresses.checked_addresses`` for the connection's host, given no more
    than the deadline's remaining time (and the connect timeout, if shorter)."""
    wait = deadline.remaining() if timeout is None else min(timeout, deadline.remaining())
    future: Future = Future()

    def lookup() -> None:
        try:
            future.set_result(addresses.checked_addresses(connection._dns_host, connection.port, **policy))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            future.set_exception(exc)

    threading.Thread(target=lookup, name="http-resolve", daemon=True).start()
    try:
        return future.result(timeout=wait)
    except FutureTimeout:
        deadline.check()
        raise ConnectTimeoutError(connection, f"resolving {connection.host} timed out after {wait:g} s") from None


class Destination:
    """Where a session may connect: the address policy and, for a session of
    one call, its deadline (a pooled connection takes the deadline of the call
    that holds it)."""

    def __init__(self, *, deadline: Deadline | None, public_only: bool, allowed_networks: tuple = ()) -> None:
        self.deadline = deadline
        self.public_only = public_only
        self.allowed_networks = allowed_networks

    def connect(self, connection: HTTPConnection, deadline: Deadline) -> socket.socket:
        deadline.check()
        timeout = connection.timeout if isinstance(connection.timeout, (int, float)) else None
        answers = _resolve_within(connection, deadline, timeout, allow_private=not self.public_only,
                                  allowed_networks=self.allowed_networks)
        last_error: OSError | None = None
        for family, sockaddr in answers:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in connection.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(min(timeout or deadline.remaining(), deadline.remaining()) or 0.001)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last_error = exc
                deadline.check()
                continue
            deadline.watch(sock, owner=connection)
            return sock
        if isinstance(last_error, TimeoutError):
            raise ConnectTimeoutError(connection, f"connecting to {connection.host} timed out")
        raise NewConnectionError(connection, f"failed to connect to {connection.host}: {last_error}")


class _ChecksDestination:
    def __init__(self, *args, destination: Destination, **kwargs) -> None:
        self._destination = destination
        super().__init__(*args, **kwargs)

    def call_deadline(self) -> Deadline:
        return self._destination.deadline

    def _new_conn(self) -> socket.socket:
        return self._destination.connect(self, self.call_deadline())


class _HTTPConnection(_ChecksDestination, HTTPConnection):
    pass


class _HTTPSConnection(_ChecksDestination, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection

    def __init__(self, host, port=None, *, destination: Destination, **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.conn_kw["destination"] = destination


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection

    def __init__(self, host, port=None, *, destination: Destination, **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.conn_kw["destination"] = destination


class _Adapter(HTTPAdapter):
    def __init__(self, *, destination: Destination, **kwargs) -> None:
        self._destination = destination
        super().__init__(**kwargs)

    def _pool_classes(self) -> dict:
        return {
            "http": partial(_HTTPPool, destination=self._destination),
            "https": partial(_HTTPSPool, destination=self._destination),
        }

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes()

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through a proxy (API calls honour HTTPS_PROXY) the socket to the
        # proxy still goes through the destination, and so ends with the deadline.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._pool_classes()
        return manager


class BoundedSession(requests.Session):
    """A session for one outbound call; closing it ends its deadline."""

    def __init__(self, deadline: Deadline, *, public_only: bool) -> None:
        super().__init__()
        self.deadline = deadline
        # A proxy from the environment would be connected to instead of the
        # checked address: the probe ignores the environment (CA bundle
        # included); the API and scan-API calls keep it.
        self.trust_env = not public_only

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.RequestException:
            self.deadline.check()  # the deadline shut the socket: say so
            raise

    def close(self) -> None:
        super().close()
        self.deadline.close()


class BearerAuth(requests.auth.AuthBase):
    """An auth object, not a session header: requests would otherwise replace
    the header with Basic auth taken from user info in the URL."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def build_session(
    *,
    token: str,
    retries: int,
    backoff: float,
    deadline: float,
    public_only: bool = False,
    allowed_networks: tuple = (),
    methods: frozenset = frozenset({"GET"}),
) -> BoundedSession:
    """A session whose every connection ends by ``deadline`` seconds from now."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        # A backoff (or a Retry-After of an hour) must not stall the caller
        # far past its deadline; the next connection attempt raises once it passed.
        backoff_max=max(0.0, deadline),
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        respect_retry_after_header=False,
        raise_on_status=True,
    )
    bound = Deadline(deadline)
    session = BoundedSession(bound, public_only=public_only)
    destination = Destination(deadline=bound, public_only=public_only, allowed_networks=allowed_networks)
    adapter = _Adapter(destination=destination, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if token:
        session.auth = BearerAuth(token)
    return session


def read_body(response: requests.Response, *, max_bytes: int, deadline: Deadline) -> bytes:
    """The body, cut off past ``max_bytes``; the session's deadline bounds the time."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"announced {int(declared)} bytes; the limit is {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"sent more than {max_bytes} bytes (the limit)")
            chunks.append(chunk)
    except requests.exceptions.RequestException:
        deadline.check()
        raise
    deadline.check()
    return b"".join(chunks)

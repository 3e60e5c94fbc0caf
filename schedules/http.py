"""Outbound HTTP, bounded: one place for sessions, retries, deadlines and size caps.

Used by the API importer (schedules.api_client) and the scan runners. Every
outbound call has one ``Deadline`` that covers connecting, TLS, waiting for
headers and reading the body: read timeouts alone let a server that trickles
a byte a second hold a call forever. Every connection resolves its host once,
through ``schedules.addresses``, and connects to exactly an address that was
resolved (and, for the probe, checked), keeping the name for the Host header
and TLS SNI.

Two kinds of session:
- ``build_session``: built for one call, its connections die with it (the
  importer, the probe, alert webhooks).
- ``PooledSession``: one keep-alive pool per process for one service (the
  scan API), shared by every worker thread. A pooled connection is held by
  one call at a time; that call's deadline watches its socket from checkout
  until it is put back, and a connection the deadline shut down is discarded,
  never put back for the next call.
"""

from __future__ import annotations

import contextvars
import http.cookiejar
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from urllib.parse import urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError
from urllib3.util.retry import Retry

from . import addresses

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
        answers = addresses.checked_addresses(
            connection._dns_host, connection.port, allow_private=not self.public_only,
            allowed_networks=self.allowed_networks,
        )
        timeout = connection.timeout if isinstance(connection.timeout, (int, float)) else None
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


class KeepAliveDropped(ConnectionResetError):
    """The server closed a reused keep-alive connection before it answered."""


# The deadline of the call running in this thread: what a pooled connection
# checked out now (or connected now) is held by.
_CALL: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("schedules_http_call", default=None)


def _call_deadline() -> Deadline:
    deadline = _CALL.get()
    if deadline is None:
        raise RuntimeError("a PooledSession is used outside its call() block")
    return deadline


class _HeldByOneCall(_ChecksDestination):
    """A pooled connection, held by one call at a time: from checkout until it
    is put back, that call's deadline watches its socket (a new socket is
    watched from its connect)."""

    _holder: Deadline | None = None
    _answered = 0  # responses read on the current socket: more than 0 means reused

    def call_deadline(self) -> Deadline:
        if self._holder is None:
            raise RuntimeError("a pooled connection is used while no call holds it")
        return self._holder

    def hold(self, deadline: Deadline) -> None:
        self._holder = deadline
        if self.sock is not None:
            deadline.watch(self.sock, owner=self)

    def let_go(self) -> bool:
        """Ends the hold; False when the holder's deadline shut the socket down."""
        holder, self._holder = self._holder, None
        return holder is None or holder.release(self)

    def _new_conn(self) -> socket.socket:
        self._answered = 0
        return super()._new_conn()

    def getresponse(self):
        try:
            response = super().getresponse()
        except ConnectionError as exc:  # http.client.RemoteDisconnected is one
            holder = self._holder
            if self._answered and holder is not None and not holder.expired.is_set():
                raise KeepAliveDropped(f"the server closed a kept-alive connection before answering ({exc})") from exc
            raise
        self._answered += 1
        return response


class _PooledHTTPConnection(_HeldByOneCall, HTTPConnection):
    pass


class _PooledHTTPSConnection(_HeldByOneCall, HTTPSConnection):
    pass


class _LendsConnections:
    """A pool whose connections are lent to the call running in the thread
    that checks them out, and come back only if its deadline left them alone."""

    def _get_conn(self, timeout=None):
        deadline = _call_deadline()
        conn = super()._get_conn(timeout)
        try:
            conn.hold(deadline)
        except BaseException:
            conn.close()  # urlopen puts None back in its place
            raise
        return conn

    def _put_conn(self, conn) -> None:
        if conn is not None and not conn.let_go():
            conn.close()
            conn = None  # shut down by the deadline: its place is taken by a new connection
        super()._put_conn(conn)


class _PooledHTTPPool(_LendsConnections, _HTTPPool):
    ConnectionCls = _PooledHTTPConnection


class _PooledHTTPSPool(_LendsConnections, _HTTPSPool):
    ConnectionCls = _PooledHTTPSConnection


class _PooledAdapter(_Adapter):
    def __init__(self, **kwargs) -> None:
        self._proxy_lock = threading.Lock()
        super().__init__(**kwargs)

    def _pool_classes(self) -> dict:
        return {
            "http": partial(_PooledHTTPPool, destination=self._destination),
            "https": partial(_PooledHTTPSPool, destination=self._destination),
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        with self._proxy_lock:  # shared by every thread: one manager per proxy
            return super().proxy_manager_for(proxy, **proxy_kwargs)


class _ResendOnlyDroppedKeepAlive(Retry):
    """Retry(0), except for one case: the server closed a reused keep-alive
    connection before answering (it closes idle connections on its own
    schedule). That request is sent once more on a new connection, with the
    same headers, Idempotency-Key included: the rule of Go's net/http for a
    request carrying that header. A timeout, or anything that may follow a
    request the server is working on, is not resent."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and self._is_read_error(error) and not _dropped_keep_alive(error):
            raise error.with_traceback(_stacktrace)
        return super().increment(method, url, response=response, error=error, _pool=_pool, _stacktrace=_stacktrace)


def _dropped_keep_alive(error: Exception) -> bool:
    return isinstance(error, ProtocolError) and any(isinstance(arg, KeepAliveDropped) for arg in error.args)


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie, request) -> bool:
        return False

    def return_ok(self, cookie, request) -> bool:
        return False


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


class PooledSession(requests.Session):
    """One keep-alive connection pool for one service, shared by every thread
    of the process. Every request runs inside ``call()``, which gives it its
    deadline; a connection is lent to one call at a time (see _HeldByOneCall).

    Nothing is kept between calls but the connections: cookies are refused,
    and credentials go with each request (``auth=``), not on the session.
    Redirects are never followed; a 3xx answer is the caller's to refuse."""

    def __init__(self, *, maxsize: int, pools: int = 4) -> None:
        super().__init__()
        self.cookies.set_policy(_NoCookies())
        self._environment: dict[tuple[str, str], dict] = {}
        retry = _ResendOnlyDroppedKeepAlive(
            total=1, connect=0, read=1, redirect=0, status=0, other=0,
            allowed_methods=frozenset({"GET", "POST"}), raise_on_status=True, respect_retry_after_header=False,
        )
        # pool_block=False: a caller beyond maxsize opens one more connection
        # rather than wait, and it is closed when it comes back.
        adapter = _PooledAdapter(destination=Destination(deadline=None, public_only=False),
                                 pool_connections=pools, pool_maxsize=maxsize, pool_block=False, max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    @contextmanager
    def call(self, seconds: float) -> Iterator[Deadline]:
        """One outbound call: every connection it uses is bounded by one deadline of ``seconds``."""
        deadline = Deadline(seconds)
        token = _CALL.set(deadline)
        try:
            yield deadline
        finally:
            _CALL.reset(token)
            deadline.close()

    def merge_environment_settings(self, url, proxies, stream, verify, cert) -> dict:
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read
        # once per scheme and host: it does not change under a running process,
        # and reading it costs more CPU than a POST on a kept-alive connection.
        if proxies or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._environment.get(key)
        if found is None:
            found = self._environment[key] = super().merge_environment_settings(url, {}, None, None, None)
        return {**found, "proxies": dict(found["proxies"]), "stream": self.stream if stream is None else stream}

    def get_redirect_target(self, response: requests.Response) -> None:
        # Whatever allow_redirects says: nothing is followed, and the body of a
        # 3xx is left for read_body (requests would read it whole, uncapped).
        return None

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        deadline = _call_deadline()
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.RequestException:
            deadline.check()  # the deadline shut the socket: say so
            raise

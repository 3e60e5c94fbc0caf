"""Outbound HTTP, pooled: one keep-alive pool per process for one service (the scan API).

Shared by every worker thread. A pooled connection is held by one call at a
time; that call's deadline (scanner_project.outbound.http.Deadline) watches its socket from
checkout until it is put back, and a connection the deadline shut down is
discarded, never put back for the next call.
"""

from __future__ import annotations

import contextvars
import http.cookiejar
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from urllib.parse import urlsplit

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from scanner_project.outbound.http import Deadline, Destination, _Adapter, _ChecksDestination, _HTTPPool, _HTTPSPool


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

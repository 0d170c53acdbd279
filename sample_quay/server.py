"""The sample Quay server: a loopback HTTP server with a request log."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from . import api
from .auth import Identity, identify
from .faults import Fault, FaultPlan, RateCounts, TokenBucket, play, rate_limited, retry_after_asked
from .generated import ScaleSettings, add_generated
from .model import Registry
from .paging import PageTokens
from .recorded import build_recorded_registry
from .responses import (
    API_HEADERS,
    JSON_TYPE,
    Request,
    Response,
    html_not_found,
    method_not_allowed,
)

if TYPE_CHECKING:
    from typing_extensions import Self

# The recordings were made at this second; a clock running behind it would
# turn their dead history rows back into live tags.
RECORDING_TIME = 1796397400


@dataclass(frozen=True)
class LoggedRequest:
    """One answered request, as tests inspect it.

    `started` and `finished` are `time.monotonic()` readings; `fault` names the
    fault kind that spoiled the answer ("rate_limit" for the rate limit, "" for
    none); `retry_after` is the wait a 429 asked for, in seconds from `finished`.
    """

    method: str
    path: str
    query: str
    status: int
    identity: str
    started: float
    finished: float
    fault: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class ElsewhereRequest:
    """One request that reached the redirect target, and whether it carried credentials."""

    method: str
    path: str
    query: str
    authorization: bool


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate chain and its private key, to serve HTTPS."""

    certificate: str
    key: str


def is_loopback(host: str) -> bool:
    """Tell whether a host name or address stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_registry(scale: ScaleSettings | None) -> Registry:
    """Build the recorded registry, plus generated organizations when asked."""
    registry = build_recorded_registry()
    if scale is not None:
        add_generated(registry, scale)
    return registry


class SampleQuay:
    """A Quay API look-alike on 127.0.0.1, serving recorded and generated data.

    `scanner` is "on", "off" (no security route) or "down" (520 for finished
    scans); `latency` is slept before each answer. Both may be changed while
    the server runs, as may `faults` (a list of `Fault`) and the rate limit
    (`limit_rate`). `tls` serves HTTPS with the given certificate and key.
    """

    def __init__(
        self,
        scanner: str = "on",
        latency: float = 0.0,
        scale: ScaleSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        public_host: str = "quay.example.test",
        faults: Iterable[Fault] = (),
        tls: TlsFiles | None = None,
        keep_alive: bool = False,
    ) -> None:
        """Build the registry; `public_host` is the host Quay's error URLs name.

        `keep_alive` keeps connections open as Quay's nginx front end does; by default
        every connection is closed, as the recorded (gunicorn) answers were.
        """
        if scanner not in api.SCANNER_MODES:
            raise ValueError(f"scanner must be one of {api.SCANNER_MODES}, not {scanner!r}")
        if not is_loopback(host):
            raise ValueError(f"the sample server only binds loopback addresses, not {host!r}")
        self.scanner = scanner
        self.latency = latency
        self.public_host = public_host
        self.registry = build_registry(scale)
        self._address = (host, port)
        self._pager = PageTokens(self._clock)
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._plan = FaultPlan(faults)
        self._bucket: TokenBucket | None = None
        self._tls = tls
        self.keep_alive = keep_alive
        self._stopping = threading.Event()
        self._elsewhere: Elsewhere | None = None
        self._refusing = False

    def start(self) -> Self:
        """Bind the address and serve from a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the sample server is already running")
        self._stopping.clear()
        self._httpd = _Server(self._address, self)
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._tls.certificate, self._tls.key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="sample-quay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (stalled answers end at once) and release the port."""
        self._stopping.set()
        self._refusing = False
        if self._elsewhere is not None:
            self._elsewhere.stop()
            self._elsewhere = None
        self._close_listener()

    def refuse_connections(self) -> None:
        """Close the listening socket, so connections are refused until `accept_connections`."""
        self._address = self._listening_address()
        self._close_listener()
        self._refusing = True

    def accept_connections(self) -> None:
        """Listen again on the same port after `refuse_connections`."""
        if self._refusing:
            self._refusing = False
            self.start()

    def _listening_address(self) -> tuple[str, int]:
        """Return the bound host and port (the port kept while connections are refused)."""
        if self._refusing:
            return self._address
        if self._httpd is None:
            raise RuntimeError("the sample server is not running")
        host, port = self._httpd.server_address[:2]
        return (host.decode() if isinstance(host, (bytes, bytearray)) else host), port

    def _close_listener(self) -> None:
        """Stop the serving thread and close the listening socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        """Start the server for a `with` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server at the end of a `with` block."""
        self.stop()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. "http://127.0.0.1:8123"."""
        host, port = self._listening_address()
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{shown}:{port}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """Return a copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    @property
    def max_in_flight(self) -> int:
        """Return the most requests that were being answered at the same time."""
        with self._lock:
            return self._max_in_flight

    def clear_requests(self) -> None:
        """Forget the request log and the in-flight maximum."""
        with self._lock:
            self._log.clear()
            self._max_in_flight = self._in_flight

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Return the fault plan."""
        return self._plan.faults

    @faults.setter
    def faults(self, faults: Iterable[Fault]) -> None:
        """Replace the fault plan; every fault starts again with no request seen."""
        self._plan = FaultPlan(faults)

    @property
    def faults_injected(self) -> dict[str, int]:
        """Return how many requests each kind of fault has spoiled under the current plan."""
        return self._plan.injected()

    def limit_rate(self, per_second: float | None, burst: int | None = None) -> None:
        """Answer 429 (no Retry-After, nginx's HTML) above `per_second`; None lifts the limit.

        A token bucket holding `burst` requests (default: one second's worth), as nginx's
        limit_req with nodelay. Counts start again at zero.
        """
        if per_second is None:
            self._bucket = None
            return
        self._bucket = TokenBucket(per_second, burst or max(1, round(per_second)))

    @property
    def rate_counts(self) -> RateCounts:
        """Return the requests the rate limit accepted and rejected (zeros without one)."""
        return self._bucket.counts if self._bucket is not None else RateCounts(0, 0)

    @property
    def elsewhere(self) -> Elsewhere:
        """Return the redirect target on another loopback host:port, starting it if needed."""
        if self._httpd is None:
            raise RuntimeError("the sample server is not running")
        with self._lock:
            if self._elsewhere is None:
                self._elsewhere = Elsewhere(lambda request: self._answer(request)[0]).start()
            return self._elsewhere

    def dispatch(self, request: Request) -> Response:
        """Answer one request; the single place for cross-cutting behaviour.

        In order: the rate limit, the latency, the fault plan, the API itself.
        """
        started = time.monotonic()
        self._enter()
        try:
            response, identity, fault = self._respond(request)
        finally:
            self._leave()
        if request.headers.get("Authorization") is None:
            response.headers.setdefault("Vary", "Cookie")
        finished = time.monotonic()
        asked = retry_after_asked(response) if response.status == 429 else None
        entry = LoggedRequest(
            request.method,
            request.path,
            request.query,
            response.status,
            identity,
            started,
            finished,
            fault,
            asked,
        )
        with self._lock:
            self._log.append(entry)
        return response

    def wait_unless_stopped(self, seconds: float) -> None:
        """Sleep for a stalled answer, waking early when the server stops."""
        self._stopping.wait(seconds)

    def _respond(self, request: Request) -> tuple[Response, str, str]:
        """Answer with the rate limit and the fault plan applied; name the fault played."""
        bucket = self._bucket
        if bucket is not None and not bucket.admit():
            return rate_limited("none", 0.0), self._identify(request).label, "rate_limit"
        # The latency is how long an answer takes, the time spent computing it included.
        answer_at = time.monotonic() + self.latency
        fault = self._plan.pick(request)
        if fault is None:
            response, identity = self._answer(request)
            fault_kind = ""
        else:
            redirect_to = self.elsewhere.url if fault.kind == "redirect" else ""
            response = play(fault, request, lambda changed: self._answer(changed)[0], redirect_to)
            identity, fault_kind = self._identify(request).label, fault.kind
        if (left := answer_at - time.monotonic()) > 0:
            time.sleep(left)
        return response, identity, fault_kind

    def _identify(self, request: Request) -> Identity:
        """Resolve the caller; Basic credentials count only on the security route."""
        found = api.find_route(request.path)
        basic = found is not None and found[0].basic_auth and self.scanner != "off"
        return identify(request.headers, allow_basic=basic)

    def _answer(self, request: Request) -> tuple[Response, str]:
        """Route a request and return the response and the caller's label."""
        found = api.find_route(request.path)
        identity = self._identify(request)
        if request.method != "GET":
            return method_not_allowed(), identity.label
        if found is None:
            return html_not_found(), identity.label
        route, groups = found
        ctx = api.Context(
            self.registry,
            identity,
            request,
            self.url,
            self.scanner,
            self.public_host,
            self._pager,
            self._clock(),
        )
        response = api.answer(ctx, route, groups)
        if response.content_type == JSON_TYPE:
            response.headers.update(API_HEADERS)
        return response, identity.label

    def _clock(self) -> float:
        """Return the registry's notion of now (never before the recordings)."""
        return max(time.time(), RECORDING_TIME)

    def _enter(self) -> None:
        """Count a request as in flight."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        """Count a request as answered."""
        with self._lock:
            self._in_flight -= 1


class Elsewhere:
    """The redirect target: another loopback host:port that logs who sent credentials.

    It answers what `answer` gives (the sample registry, for whatever credentials
    arrive), so a client that followed a redirect there would be served.
    """

    keep_alive = False

    def __init__(self, answer: Callable[[Request], Response]) -> None:
        """Remember how to answer; `start` binds 127.0.0.2 where possible."""
        self._answer = answer
        self._lock = threading.Lock()
        self._log: list[ElsewhereRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Elsewhere:
        """Bind a free port on 127.0.0.2 (or 127.0.0.1 where only that exists) and serve."""
        try:
            self._httpd = _Server(("127.0.0.2", 0), self)
        except OSError:
            self._httpd = _Server(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="elsewhere", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    @property
    def url(self) -> str:
        """Return the base URL, on a host other than the sample server's."""
        if self._httpd is None:
            raise RuntimeError("the redirect target is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[ElsewhereRequest]:
        """Return a copy of the requests that arrived, oldest first."""
        with self._lock:
            return list(self._log)

    def dispatch(self, request: Request) -> Response:
        """Log whether the request carried an Authorization header, then answer it."""
        entry = ElsewhereRequest(
            request.method,
            request.path,
            request.query,
            request.headers.get("Authorization") is not None,
        )
        with self._lock:
            self._log.append(entry)
        return self._answer(request)

    def wait_unless_stopped(self, seconds: float) -> None:
        """Never stall: the redirect target plays no faults."""


class _App(Protocol):
    """What the HTTP handler needs from the server behind it."""

    keep_alive: bool

    def dispatch(self, request: Request) -> Response:
        """Answer one request."""

    def wait_unless_stopped(self, seconds: float) -> None:
        """Sleep for a stalled answer."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that hands every request to a SampleQuay."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: _App) -> None:
        """Bind the address (IPv4 or IPv6) for the given app."""
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Translate between http.server and SampleQuay.dispatch."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        """Send each answer at once: headers and body go out in separate writes."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __getattr__(self, name: str) -> Callable[[], None]:
        """Send every method (do_GET, do_POST...) to dispatch, which refuses all but GET."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        """Build the request, dispatch it and write the response."""
        raw_path, _, query = self.path.partition("?")
        request = Request(self.command, raw_path, unquote(raw_path), query, self.headers)
        response = self.server.app.dispatch(request)
        if response.stall > 0:
            self.server.app.wait_unless_stopped(response.stall)
        # The client may have given up waiting (a stall): nothing to write to then.
        with contextlib.suppress(OSError):
            self._write(response)
        if response.reset_after is not None:
            self._reset()

    def _write(self, response: Response) -> None:
        """Write the status, headers and body (only part of it before a reset)."""
        self.send_response(response.status, _reason(response.status))
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        # Quay's gunicorn closes every connection; its nginx front end keeps them open.
        if not self.server.app.keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body[: response.reset_after])

    def _reset(self) -> None:
        """Drop the connection with a TCP reset instead of an orderly close."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the app keeps its own request log."""


def _reason(status: int) -> str:
    """Return the reason phrase, "UNKNOWN" for Quay's non-standard 520."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "UNKNOWN"

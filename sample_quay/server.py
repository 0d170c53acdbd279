"""The sample Quay server: a loopback HTTP server with a request log."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import unquote

from . import api
from .auth import identify
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
    """One answered request, as tests inspect it."""

    method: str
    path: str
    query: str
    status: int
    identity: str
    started: float
    finished: float


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
    the server runs.
    """

    def __init__(
        self,
        scanner: str = "on",
        latency: float = 0.0,
        scale: ScaleSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        public_host: str = "quay.example.test",
    ) -> None:
        """Build the registry; `public_host` is the host Quay's error URLs name."""
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

    def start(self) -> Self:
        """Bind the address and serve from a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the sample server is already running")
        self._httpd = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="sample-quay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
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
        if self._httpd is None:
            raise RuntimeError("the sample server is not running")
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

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

    def dispatch(self, request: Request) -> Response:
        """Answer one request; the single place for cross-cutting behaviour."""
        started = time.monotonic()
        self._enter()
        try:
            if self.latency > 0:
                time.sleep(self.latency)
            response, identity = self._answer(request)
        finally:
            self._leave()
        if request.headers.get("Authorization") is None:
            response.headers.setdefault("Vary", "Cookie")
        entry = LoggedRequest(
            request.method,
            request.path,
            request.query,
            response.status,
            identity,
            started,
            time.monotonic(),
        )
        with self._lock:
            self._log.append(entry)
        return response

    def _answer(self, request: Request) -> tuple[Response, str]:
        """Route a request and return the response and the caller's label."""
        found = api.find_route(request.path)
        basic = found is not None and found[0].basic_auth and self.scanner != "off"
        identity = identify(request.headers, allow_basic=basic)
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


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that hands every request to a SampleQuay."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SampleQuay) -> None:
        """Bind the address (IPv4 or IPv6) for the given app."""
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Translate between http.server and SampleQuay.dispatch."""

    protocol_version = "HTTP/1.1"
    server: _Server

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
        self.send_response(response.status, _reason(response.status))
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        # Quay (gunicorn) closes every connection; so do we.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the app keeps its own request log."""


def _reason(status: int) -> str:
    """Return the reason phrase, "UNKNOWN" for Quay's non-standard 520."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "UNKNOWN"

"""Fault injection: a plan of faults per URL path, and an nginx-like rate limit.

A `Fault` names a kind of trouble and the paths it hits. By default it is
transient: each URL it matches fails `times` times, then answers normally, so
a client that retries still gets everything. `times=None` keeps failing.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from email.utils import formatdate, parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode

from .responses import HTML_TYPE, JSON_TYPE, Request, Response, json_response

#: Every kind of fault, with what it does to a matching request.
FAULT_KINDS = {
    "rate_limited": "429, Retry-After as `retry_after` says (seconds, date, fraction, none)",
    "server_error": "`status` (500, 502, 503, 504, 520) with a `body` of json or html",
    "reset": "headers and half the body, then the connection is reset",
    "stall": "silence for `wait` seconds before the answer (longer than a client timeout)",
    "html": "200 with a proxy's HTML sign-in page",
    "truncated_json": "200 with the first half of the JSON body",
    "repeat_page": "a next page answers the previous page again (tags) or page 1 (repositories)",
    "cursor_loop": "a repository page hands back the cursor it was asked with",
    "robot_secrets": "robots answered as if token=false had not been sent",
    "duplicate_member": "team members with the first member listed twice",
    "redirect": "`status` (302 or 307) to the same URL on another loopback host:port",
}
RETRY_AFTER_FORMS = ("seconds", "date", "fraction", "none")
SERVER_ERROR_STATUSES = (500, 502, 503, 504, 520)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

_DEFAULT_WAIT = {"rate_limited": 1.0, "stall": 90.0}
_DEFAULT_STATUS = {"server_error": 503, "redirect": 302}
_ROBOTS = re.compile(r"/api/v1/organization/[^/]+/robots")
_TEAM_MEMBERS = re.compile(r"/api/v1/organization/[^/]+/team/[^/]+/members")
_REPOSITORIES = "/api/v1/repository"
_TAGS = re.compile(r"/api/v1/repository/.+/tag/")
_PHRASES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
    520: "Unknown Error",
}
_SIGN_IN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><title>Sign in - Corporate Access Proxy</title></head>
<body><form method="post" action="/oauth2/start"><h1>Sign in to continue</h1>
<input name="username"><input name="password" type="password"><button>Sign in</button>
</form></body>
</html>
"""


@dataclass(frozen=True)
class Fault:
    """One kind of trouble for the URL paths matching `path` (a regex, searched).

    `times` is how often each matching URL fails before it answers normally
    (None: always). With `nth`, only the URL of the Nth matching request fails.
    `status`, `body`, `retry_after` and `wait` refine some kinds (see FAULT_KINDS).
    """

    kind: str
    path: str = ""
    times: int | None = 1
    nth: int | None = None
    status: int | None = None
    body: str = "json"
    retry_after: str = "seconds"
    wait: float | None = None

    def __post_init__(self) -> None:
        """Refuse kinds and options the server cannot play."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        re.compile(self.path)
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for a fault that keeps failing")
        if self.retry_after not in RETRY_AFTER_FORMS:
            raise ValueError(f"retry_after must be one of {RETRY_AFTER_FORMS}")
        if self.body not in ("json", "html"):
            raise ValueError("body must be json or html")
        allowed = {"server_error": SERVER_ERROR_STATUSES, "redirect": REDIRECT_STATUSES}
        if self.status is not None and self.status not in allowed.get(self.kind, ()):
            raise ValueError(f"status {self.status} does not fit a {self.kind} fault")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Read "KIND [PATH_REGEX] [name=value ...]", as the command line takes it."""
        kind, *rest = spec.split()
        path = rest.pop(0) if rest and "=" not in rest[0] else ""
        options: dict[str, object] = {}
        for item in rest:
            name, _, value = item.partition("=")
            options[name] = _option(name, value)
        return cls(kind, path, **options)  # type: ignore[arg-type]

    @property
    def seconds(self) -> float:
        """Return the wait this fault asks for or plays (rate_limited, stall)."""
        return self.wait if self.wait is not None else _DEFAULT_WAIT.get(self.kind, 0.0)

    @property
    def code(self) -> int:
        """Return the status a server_error or redirect fault answers."""
        return self.status or _DEFAULT_STATUS.get(self.kind, 200)

    def applies_to(self, request: Request) -> bool:
        """Tell whether the request matches the path and is one this kind can spoil."""
        if re.search(self.path, request.path) is None:
            return False
        check = _APPLIES.get(self.kind)
        return check is None or check(request)


def _option(name: str, value: str) -> object:
    """Convert one name=value option of a command-line fault."""
    if name in ("times", "nth"):
        return None if value in ("always", "none") else int(value)
    if name == "status":
        return int(value)
    if name == "wait":
        return float(value)
    if name in ("body", "retry_after"):
        return value
    raise ValueError(f"unknown fault option {name!r}")


def _params(request: Request) -> dict[str, str]:
    """Return the query parameters of a request (first value of each)."""
    return dict(reversed(parse_qsl(request.query, keep_blank_values=True)))


def _is_next_page(request: Request) -> bool:
    """Tell whether a request asks for a page after the first."""
    params = _params(request)
    if request.path == _REPOSITORIES:
        return bool(params.get("next_page"))
    return _TAGS.fullmatch(request.path) is not None and params.get("page", "1") not in ("", "1")


_APPLIES: dict[str, Callable[[Request], bool]] = {
    "repeat_page": _is_next_page,
    "cursor_loop": lambda r: r.path == _REPOSITORIES and bool(_params(r).get("next_page")),
    "robot_secrets": lambda r: _ROBOTS.fullmatch(r.path) is not None,
    "duplicate_member": lambda r: _TEAM_MEMBERS.fullmatch(r.path) is not None,
}


@dataclass
class _FaultState:
    """What one fault of a plan has seen: matching requests and failures per URL."""

    fault: Fault
    matched: int = 0
    chosen_url: str | None = None
    failures: Counter[str] = field(default_factory=Counter)

    def fires(self, request: Request) -> bool:
        """Count a request and tell whether the fault spoils it."""
        if not self.fault.applies_to(request):
            return False
        url = f"{request.path}?{request.query}"
        self.matched += 1
        if self.fault.nth is not None:
            if self.matched == self.fault.nth:
                self.chosen_url = url
            if url != self.chosen_url:
                return False
        times = self.fault.times
        if times is not None and self.failures[url] >= times:
            return False
        self.failures[url] += 1
        return True


class FaultPlan:
    """The faults a server plays, in order: a URL hit by several fails by each in turn."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        """Start every fault with no request seen."""
        self._states = [_FaultState(fault) for fault in faults]
        self._lock = threading.Lock()

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Return the faults of the plan."""
        return tuple(state.fault for state in self._states)

    def pick(self, request: Request) -> Fault | None:
        """Return the fault that spoils this request, if any, and count it."""
        with self._lock:
            for state in self._states:
                if state.fires(request):
                    return state.fault
        return None

    def injected(self) -> dict[str, int]:
        """Return how many requests each kind of fault spoiled so far."""
        with self._lock:
            totals: Counter[str] = Counter()
            for state in self._states:
                totals[state.fault.kind] += sum(state.failures.values())
        return dict(totals)


class RateCounts(NamedTuple):
    """Requests the rate limit let through and those it answered 429."""

    accepted: int
    rejected: int


class TokenBucket:
    """nginx's limit_req with nodelay: `per_second` refill, `burst` capacity."""

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start full, so a first burst of `burst` requests passes."""
        if per_second <= 0 or burst < 1:
            raise ValueError("the rate must be positive and the burst at least 1")
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()
        self._accepted = 0
        self._rejected = 0

    def admit(self) -> bool:
        """Take a token if one is left; count the request either way."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                self._accepted += 1
                return True
            self._rejected += 1
            return False

    @property
    def counts(self) -> RateCounts:
        """Return the accepted and rejected requests so far."""
        with self._lock:
            return RateCounts(self._accepted, self._rejected)


# Answers -------------------------------------------------------------------

Answer = Callable[[Request], Response]


def play(fault: Fault, request: Request, answer: Answer, elsewhere: str) -> Response:
    """Answer a request the way `fault` spoils it; `answer` gives the normal answer."""
    if fault.kind == "rate_limited":
        return rate_limited(fault.retry_after, fault.seconds)
    if fault.kind == "server_error":
        return server_error(fault.code, fault.body, request)
    if fault.kind == "html":
        return Response(200, _SIGN_IN_PAGE.encode(), HTML_TYPE)
    if fault.kind == "redirect":
        query = f"?{request.query}" if request.query else ""
        location = f"{elsewhere}{request.raw_path}{query}"
        return Response(fault.code, b"", HTML_TYPE, {"Location": location})
    return _spoil(fault, request, answer)


def _spoil(fault: Fault, request: Request, answer: Answer) -> Response:
    """Play the kinds that change the request or the normal answer."""
    if fault.kind == "repeat_page":
        return answer(_with_params(request, _previous_page(request)))
    if fault.kind == "robot_secrets":
        return answer(_with_params(request, {"token": "true"}))
    response = answer(request)
    if fault.kind == "reset":
        return replace(response, reset_after=len(response.body) // 2)
    if fault.kind == "stall":
        return replace(response, stall=fault.seconds)
    if response.status != 200 or response.content_type != JSON_TYPE:
        return response
    if fault.kind == "truncated_json":
        return replace(response, body=response.body[: len(response.body) // 2])
    return _edit_json(fault, request, response)


def _edit_json(fault: Fault, request: Request, response: Response) -> Response:
    """Rewrite a JSON answer: keep the cursor from looping, or repeat a member."""
    body = json.loads(response.body)
    if fault.kind == "cursor_loop" and "next_page" in body:
        body["next_page"] = _params(request)["next_page"]
    if fault.kind == "duplicate_member" and body.get("members"):
        body["members"].append(dict(body["members"][0]))
    return replace(json_response(body, response.status), headers=response.headers)


def _previous_page(request: Request) -> dict[str, str | None]:
    """Return the query change that asks for the page before this one."""
    if request.path == _REPOSITORIES:
        return {"next_page": None}
    return {"page": str(int(_params(request)["page"]) - 1)}


def _with_params(request: Request, changes: dict[str, str | None]) -> Request:
    """Return the request with some query parameters replaced (None removes one)."""
    params = _params(request)
    for name, value in changes.items():
        params.pop(name, None)
        if value is not None:
            params[name] = value
    return replace(request, query=urlencode(params))


def rate_limited(form: str, seconds: float) -> Response:
    """Answer 429 from the proxy, asking for `seconds` in the given Retry-After form."""
    headers = {}
    if form == "seconds":
        headers["Retry-After"] = str(max(0, round(seconds)))
    elif form == "fraction":
        headers["Retry-After"] = f"{seconds:.3f}"
    elif form == "date":
        # HTTP dates hold whole seconds: round up so the wait is never shorter.
        headers["Retry-After"] = formatdate(int(time.time() + seconds) + 1, usegmt=True)
    return Response(429, nginx_page(429), HTML_TYPE, headers)


def retry_after_asked(response: Response) -> float | None:
    """Return the seconds a 429 asks for, from now, or None without Retry-After."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    return parsedate_to_datetime(value).timestamp() - time.time()


def server_error(status: int, body: str, request: Request) -> Response:
    """Answer a 5xx as Quay (json) or the nginx in front of it (html) would."""
    if body == "html":
        # A debugging proxy echoes the request headers: a client that logs error
        # bodies would leak its token, which the secrecy tests then catch.
        echoed = html.escape(request.headers.get("Authorization") or "")
        page = nginx_page(status) + f"<!-- Authorization: {echoed} -->\n".encode()
        return Response(status, page, HTML_TYPE)
    if status == 520:
        payload: dict[str, object] = {
            "detail": "Downstream security service failure",
            "error_message": "Downstream security service failure",
            "error_type": "downstream_issue",
            "title": "downstream_issue",
            "status": 520,
        }
    else:
        payload = {"message": _PHRASES[status]}
    return json_response(payload, status)


def nginx_page(status: int) -> bytes:
    """Return nginx's error page for a status."""
    title = f"{status} {_PHRASES.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()

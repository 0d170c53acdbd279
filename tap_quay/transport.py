"""One HTTP transport for the whole tap: a bounded, self-pacing pool that fetches ahead.

The Singer SDK syncs streams depth first, one request at a time. When a parent's records
are known, the streams register the requests their children will make (``prefetch``),
each with a key that sorts in the order the SDK will ask for it. A few worker threads
send the soonest of them, and ``send`` hands each answer to the SDK when it asks for that
URL, so every prefetched answer is used exactly once and the output is the same as a
sequential sync. At most ``lookahead`` answers are held or in flight, whatever the size of
the registry.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import sys
import threading
import time
import typing as t
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable

#: Sort key of a prefetched request: its place in the depth-first walk.
Order = tuple[int, ...]

TOO_MANY_REQUESTS = 429
OK = 200
#: Rate after a 429, as a share of the rate that provoked it.
RATE_DECREASE = 0.9
#: Requests per second regained per second of successes (additive increase).
RATE_INCREASE = 0.25
MIN_RATE = 0.5
#: The pace that provoked a 429 is measured over the last second (less early in a run).
RATE_WINDOW = 1.0
MIN_WINDOW = 0.05
GIL_SWITCH_INTERVAL = 0.0001
#: Sends of a prefetched request that Quay rate-limits before the SDK sees the 429.
RATE_LIMITED_TRIES = 8
#: Longest Retry-After a worker waits out itself; longer ones go to the SDK's policy.
MAX_WORKER_WAIT = 60.0


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Read ``Retry-After`` as seconds (integer or fraction) or as an HTTP date."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def request_key(url: str) -> str:
    """Return a URL's path and query with the query parameters in a fixed order."""
    parts = urlsplit(url)
    return f"{parts.path}?{'&'.join(sorted(parts.query.split('&')))}"


class Throttle:
    """Bound the requests in flight and, once the server pushes back, their rate.

    A 429 halves the concurrency allowed and sets a rate a little under the one that
    provoked it; each success then adds a little of both back, so the tap settles just
    under the server's limit (additive increase, multiplicative decrease).
    """

    def __init__(self, max_concurrency: int, max_rate: float | None) -> None:
        """Start at full concurrency, paced only by ``max_rate`` if one is set."""
        self.max_concurrency = max_concurrency
        self.max_rate = max_rate
        self.concurrency = float(max_concurrency)
        self.rate = max_rate
        self.in_flight = 0
        self._next_start = 0.0
        self._last_decrease = 0.0
        self._recent_starts: deque[float] = deque()
        self._first_start = 0.0
        self._changed = threading.Condition()

    def acquire(self) -> float:
        """Wait for a free slot and the pace; return when the request may start."""
        with self._changed:
            while self.in_flight >= max(1, int(self.concurrency)):
                self._changed.wait()
            self.in_flight += 1
            now = time.monotonic()
            start = max(now, self._next_start)
            if self.rate:
                self._next_start = start + 1 / self.rate
            self._recent_starts.append(start)
            self._first_start = self._first_start or start
            while self._recent_starts[0] < now - RATE_WINDOW:
                self._recent_starts.popleft()
        if start > now:
            time.sleep(start - now)
        return start

    def release(self, started: float, *, throttled: bool) -> None:
        """Free the slot and learn from the answer."""
        with self._changed:
            self.in_flight -= 1
            if throttled and started >= self._last_decrease:
                self._slow_down()
            elif not throttled:
                self._speed_up()
            self._changed.notify_all()

    def _slow_down(self) -> None:
        # Only requests started after the last decrease count, so one burst of 429s
        # answering the same round of requests lowers the pace once.
        now = time.monotonic()
        self.rate = max(MIN_RATE, (self.rate or self._recent_rate(now)) * RATE_DECREASE)
        self.concurrency = max(1.0, self.concurrency / 2)
        self._last_decrease = now

    def _recent_rate(self, now: float) -> float:
        """Return the requests started per second lately (over less than a second early on)."""
        window = min(RATE_WINDOW, max(MIN_WINDOW, now - (self._first_start or now)))
        return sum(1 for start in self._recent_starts if start >= now - window) / window

    def _speed_up(self) -> None:
        self.concurrency = min(self.max_concurrency, self.concurrency + 1 / self.concurrency)
        if self.rate is not None and self.rate != self.max_rate:
            self.rate += RATE_INCREASE / self.rate
            if self.max_rate is not None:
                self.rate = min(self.rate, self.max_rate)


@dataclass
class PrefetchJob:
    """A request registered ahead of the SDK, and later its answer."""

    order: Order
    build: Callable[[], requests.PreparedRequest]
    #: Called by the worker with a 200 answer, to register what that answer makes known.
    follow: Callable[[requests.Response], None] | None = None
    state: str = "waiting"  # waiting → running → done; or taken by the SDK while waiting
    response: requests.Response | None = None
    error: Exception | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class Transport(requests.Session):
    """A session shared by every stream: throttled sends and a bounded look-ahead."""

    def __init__(
        self,
        *,
        base_url: str,
        max_concurrency: int,
        max_rate: float | None,
        timeout: float,
        ca_bundle: str | None = None,
        max_retry_wait: float = MAX_WORKER_WAIT,
    ) -> None:
        """Create the pool; worker threads start with the first prefetch."""
        super().__init__()
        for scheme in ("https://", "http://"):
            self.mount(scheme, HTTPAdapter(pool_maxsize=max_concurrency + 1))
        # Read proxy and CA settings from the environment once, not on every request.
        settings = self.merge_environment_settings(base_url, {}, None, ca_bundle, None)
        self.proxies, self.verify = settings["proxies"], settings["verify"]
        self.trust_env = False
        # A worker must not wait out a Retry-After that the SDK's policy would refuse.
        self.max_worker_wait = min(MAX_WORKER_WAIT, max_retry_wait)
        self.throttle = Throttle(max_concurrency, max_rate)
        self.timeout = timeout
        # One worker more than there are slots, so a request is built and waiting the
        # moment a slot frees; a window of a few answers per worker keeps them busy while
        # the SDK writes records, and bounds memory.
        self.workers = max_concurrency + 1 if max_concurrency > 1 else 0
        self.lookahead = 4 * self.workers
        self._jobs: dict[str, PrefetchJob] = {}
        self._queue: list[tuple[Order, int, str, PrefetchJob]] = []
        self._tiebreak = itertools.count()
        self._active: dict[str, PrefetchJob] = {}  # running or done, not yet handed over
        self._cursor: Order = ()
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    # The SDK's side ------------------------------------------------------

    def prefetch(
        self,
        order: Order,
        url: str,
        build: Callable[[], requests.PreparedRequest],
        follow: Callable[[requests.Response], None] | None = None,
    ) -> None:
        """Register a request the SDK will make later, at the place ``order`` says.

        ``follow`` sees the answer as soon as it arrives, so the next page of a listing can
        be fetched before the SDK reaches the first.
        """
        if not self.workers:
            return
        key = request_key(url)
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = PrefetchJob(order, build, follow)
            elif order >= job.order:
                return
            job.order = order  # wanted sooner than first thought (a manifest list's child)
            if job.state != "waiting":
                return
            heapq.heappush(self._queue, (order, next(self._tiebreak), key, job))
            self._lock.notify()
        self._start_workers()

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        """Answer from the look-ahead when it holds this URL; otherwise send now."""
        job = self._take(request_key(request.url or ""))
        if job is None:
            return self._send_now(request, **kwargs)
        job.finished.wait()
        if job.error is not None:
            raise job.error
        return t.cast("requests.Response", job.response)

    def _take(self, key: str) -> PrefetchJob | None:
        with self._lock:
            job = self._jobs.pop(key, None)
            if job is None:
                return None
            self._active.pop(key, None)
            # The SDK asks in walk order: what was registered before this and is still not
            # taken is not needed soon (its parent failed, say), so it stops holding room.
            self._cursor = max(self._cursor, job.order)
            self._lock.notify()
            if job.state == "waiting":
                job.state = "taken"
                return None
            return job

    # The workers' side ---------------------------------------------------

    def _start_workers(self) -> None:
        # A thread whose answer has arrived waits for the interpreter lock while the SDK
        # writes records; the default 5 ms switch interval would add that to every request.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        with self._lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name="tap-quay-fetch", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                job.response = self._fetch(job.build())
            except Exception as error:  # handed to the SDK, whose retry policy judges it
                job.error = error
            with self._lock:
                job.state = "done"
                job.finished.set()
            if job.follow and job.response is not None and job.response.status_code == OK:
                with contextlib.suppress(Exception):  # only a look-ahead: the SDK judges it
                    job.follow(job.response)

    def _fetch(self, request: requests.PreparedRequest) -> requests.Response:
        """Send a prefetched request, waiting out rate limiting here rather than in the SDK.

        A 429 only means "slower": the throttle has just lowered the pace, so the request
        goes again at that pace (after any Retry-After), while the SDK keeps consuming
        answers. After a few 429s the answer goes to the SDK and its retry policy.
        """
        for _ in range(RATE_LIMITED_TRIES):
            response = self._send_now(request, timeout=self.timeout, allow_redirects=False)
            wait = retry_after_seconds(response) or 0.0
            if response.status_code != TOO_MANY_REQUESTS or wait > self.max_worker_wait:
                break
            time.sleep(wait)
        return response

    def _next_job(self) -> PrefetchJob | None:
        with self._lock:
            while True:
                if self._closed:
                    return None
                if self._queue and self._has_room_for(self._queue[0][0]):
                    order, _, key, job = heapq.heappop(self._queue)
                    if job.state != "waiting" or self._jobs.get(key) is not job:
                        continue
                    if order < self._cursor:  # the SDK has walked past it
                        del self._jobs[key]
                        continue
                    job.state = "running"
                    self._active[key] = job
                    return job
                self._lock.wait()

    def _has_room_for(self, order: Order) -> bool:
        # Only answers the SDK needs sooner count against the window: a request found
        # late (a manifest list's children) must not wait behind answers needed later.
        # The walk is a few levels deep, so this bounds memory at a few windows.
        sooner = sum(1 for job in self._active.values() if self._cursor <= job.order < order)
        return sooner < self.lookahead

    def _send_now(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        started = self.throttle.acquire()
        status = None
        try:
            response = super().send(request, **kwargs)
            status = response.status_code
            return response
        finally:
            self.throttle.release(started, throttled=status == TOO_MANY_REQUESTS)

    def close(self) -> None:
        """Stop the workers and close the connections."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        super().close()

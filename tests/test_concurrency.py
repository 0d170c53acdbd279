"""Overlapped requests: the same output as a sequential sync, in fewer round trips' time."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter

import pytest
import requests

from sample_quay import TOKENS, SampleQuay, ScaleSettings
from sample_quay.minimum import minimum_requests
from tap_quay import transport
from tap_quay.transport import Throttle, Transport
from tests.conftest import TapRun, config_for, run_tap_process

SCALE = ScaleSettings(
    orgs=1,
    repos_per_org=3,
    active_tags=120,
    dead_tags=5,
    manifest_lists=2,
    packages=5,
    vulnerabilities=2,
)
ORGANIZATIONS = ["gen-org-000", "buynlarge"]


def comparable(run: TapRun) -> Counter:
    """Return the records of a run, without the fields that change from run to run."""
    lines = Counter()
    for stream, records in run.output.records.items():
        for record in records:
            lines[(stream, json.dumps(record, sort_keys=True))] += 1
    return lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Sync the same registry sequentially and with five requests in flight."""
    results = {}
    with SampleQuay(scale=SCALE, latency=0.005) as server:
        minimum = minimum_requests(server.registry, ORGANIZATIONS, time.time())
        for concurrency in (1, 5):
            server.clear_requests()
            config = {
                "base_url": server.url,
                "auth_token": TOKENS["full"],
                "organizations": ORGANIZATIONS,
                "max_concurrency": concurrency,
            }
            run = run_tap_process(config, tmp_path_factory.mktemp(f"c{concurrency}"))
            results[concurrency] = (run, server.requests, server.max_in_flight)
    return results, minimum


def test_a_concurrent_sync_holds_exactly_the_records_of_a_sequential_one(runs):
    (sequential, _, _), (concurrent, _, _) = runs[0][1], runs[0][5]
    assert sequential.returncode == concurrent.returncode == 0, concurrent.stderr[-2000:]
    assert sum(comparable(sequential).values()) > 1000
    assert comparable(concurrent) == comparable(sequential)


def test_requests_are_the_minimum_the_api_allows_and_never_repeated(runs):
    results, minimum = runs
    for concurrency in (1, 5):
        logged = results[concurrency][1]
        sent = Counter((r.path, r.query) for r in logged)
        assert len(logged) == minimum, concurrency
        assert max(sent.values()) == 1, concurrency


def test_requests_in_flight_stay_within_max_concurrency(runs):
    results, _ = runs
    assert results[1][2] == 1
    assert 1 < results[5][2] <= 5


def test_concurrent_output_is_whole_lines_with_each_schema_before_its_records(runs):
    concurrent = runs[0][5][0]
    lines = concurrent.stdout.splitlines()
    assert all(line.startswith("{") and line.endswith("}") for line in lines)
    seen_schema: set[str] = set()
    for line in lines:
        message = json.loads(line)
        if message["type"] == "SCHEMA":
            seen_schema.add(message["stream"])
        elif message["type"] == "RECORD":
            assert message["stream"] in seen_schema


def test_state_of_a_concurrent_run_starts_the_next_one(runs, tmp_path):
    concurrent = runs[0][5][0]
    state = concurrent.output.states[-1]
    assert max(len(line) for line in concurrent.output.state_lines) < 10_000
    with SampleQuay() as server:
        config = config_for(server, max_concurrency=5)
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        run = run_tap_process(config, tmp_path, "--state", str(state_file))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.output.count("tags") > 0


def test_a_rate_limited_registry_loses_nothing(tmp_path):
    scale = ScaleSettings(
        orgs=1,
        repos_per_org=1,
        active_tags=40,
        dead_tags=0,
        manifest_lists=1,
        packages=3,
        vulnerabilities=1,
    )
    config = {"auth_token": TOKENS["full"], "organizations": ["gen-org-000"], "max_concurrency": 5}
    (tmp_path / "clean").mkdir()
    (tmp_path / "limited").mkdir()
    with SampleQuay(scale=scale) as server:
        clean = run_tap_process({**config, "base_url": server.url}, tmp_path / "clean")
        server.limit_rate(40, burst=5)
        limited = run_tap_process({**config, "base_url": server.url}, tmp_path / "limited")
        rejected = server.rate_counts.rejected
    assert clean.returncode == limited.returncode == 0, limited.stderr[-2000:]
    assert rejected > 0
    assert comparable(limited) == comparable(clean)


def test_a_429_halves_concurrency_and_slows_the_pace_once_per_round():
    throttle = Throttle(max_concurrency=8, max_rate=None)
    starts = [throttle.acquire() for _ in range(4)]
    for started in starts:  # four requests of the same round answered 429
        throttle.release(started, throttled=True)
    # Four starts within the first moments of a run: a pace of four per MIN_WINDOW.
    assert throttle.concurrency == 4
    fastest = 4 / transport.MIN_WINDOW * transport.RATE_DECREASE
    assert fastest / 2 < throttle.rate <= fastest


def answered(throttle: Throttle, *, throttled: bool) -> None:
    """Feed one answer to the throttle without waiting for its pace."""
    throttle.in_flight += 1
    throttle.release(time.monotonic(), throttled=throttled)


def test_successes_climb_back_gradually_to_the_limits():
    throttle = Throttle(max_concurrency=8, max_rate=10.0)
    answered(throttle, throttled=True)
    lowered = throttle.rate
    assert lowered == pytest.approx(9.0)
    assert throttle.concurrency == 4
    answered(throttle, throttled=False)
    assert lowered < throttle.rate < lowered + 0.1
    assert 4 < throttle.concurrency < 5
    for _ in range(500):
        answered(throttle, throttled=False)
    assert throttle.rate == 10.0
    assert throttle.concurrency == 8


def test_a_hard_rate_cap_spaces_request_starts():
    throttle = Throttle(max_concurrency=4, max_rate=50.0)
    starts = []
    for _ in range(5):
        starts.append(throttle.acquire())
        throttle.release(starts[-1], throttled=False)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= 1 / 50 - 1e-6 for gap in gaps)


class CountingServer:
    """A sample server and a transport pointed at it, for look-ahead unit cases."""

    def __init__(self, server: SampleQuay) -> None:
        self.server = server
        self.transport = Transport(
            base_url=server.url, max_concurrency=3, max_rate=None, timeout=10
        )

    def url(self, page: int) -> str:
        return f"{self.server.url}/api/v1/organization/buynlarge?page={page}"

    def prefetch(self, order: tuple[int, ...], page: int) -> None:
        url = self.url(page)
        self.transport.prefetch(order, url, lambda: requests.Request("GET", url).prepare())

    def get(self, page: int) -> requests.Response:
        return self.transport.send(requests.Request("GET", self.url(page)).prepare(), timeout=10)


@pytest.fixture
def lookahead():
    with SampleQuay(latency=0.05) as server:
        counting = CountingServer(server)
        yield counting
        counting.transport.close()


def test_a_prefetched_answer_is_used_once_and_never_fetched_twice(lookahead):
    lookahead.prefetch((0,), 1)
    assert lookahead.get(1).status_code == 200
    assert lookahead.get(1).status_code == 200  # asked again: a fresh request
    assert len(lookahead.server.requests) == 2


def test_answers_held_ahead_stay_within_the_window(lookahead):
    window = lookahead.transport.lookahead
    for page in range(5 * window):
        lookahead.prefetch((page,), page)
    time.sleep(0.05 * window)
    assert window <= len(lookahead.server.requests) <= window + lookahead.transport.workers
    for page in range(5 * window):
        assert lookahead.get(page).status_code == 200
    assert len(lookahead.server.requests) == 5 * window


def test_a_request_needed_sooner_jumps_the_queue(lookahead):
    for page in range(1, 40):
        lookahead.prefetch((10, page), page)
    lookahead.prefetch((1,), 0)
    assert lookahead.get(0).status_code == 200
    for page in range(1, 40):
        lookahead.get(page)
    order = [r.query for r in sorted(lookahead.server.requests, key=lambda r: r.started)]
    # Workers may already be sending the first few later pages; the rest wait.
    assert order.index("page=0") <= 2 * lookahead.transport.workers
    assert len(order) == 40

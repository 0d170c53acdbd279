"""The sample server's fault plan and rate limit, seen from a plain HTTP client."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests

from sample_quay import TOKENS, SampleQuay
from sample_quay.faults import Fault, TokenBucket

AUTH = {"Authorization": f"Bearer {TOKENS['full']}"}
ORG = "/api/v1/organization/buynlarge"
TEAM = "/api/v1/organization/buynlarge/team/owners/members"


def statuses(server: SampleQuay, path: str, times: int) -> list[int]:
    """GET a path several times and return the statuses."""
    return [
        requests.get(server.url + path, headers=AUTH, allow_redirects=False).status_code
        for _ in range(times)
    ]


def test_a_transient_fault_fails_each_url_its_times_then_answers():
    faults = [Fault("server_error", r"^/api/v1/organization/", status=502, times=2)]
    with SampleQuay(faults=faults) as server:
        assert statuses(server, ORG, 3) == [502, 502, 200]
        assert statuses(server, f"{ORG}/members", 3) == [502, 502, 200]
        assert server.faults_injected == {"server_error": 4}
        assert [entry.fault for entry in server.requests[:2]] == ["server_error"] * 2


def test_a_fault_that_keeps_failing_never_answers_normally():
    with SampleQuay(faults=[Fault("server_error", ORG, times=None)]) as server:
        assert statuses(server, ORG, 6) == [503] * 6


def test_an_nth_fault_hits_only_the_url_of_the_nth_matching_request():
    faults = [Fault("server_error", r"/members$", nth=2, times=1)]
    with SampleQuay(faults=faults) as server:
        assert statuses(server, f"{ORG}/members", 1) == [200]
        assert statuses(server, TEAM, 2) == [503, 200]
        assert statuses(server, f"{ORG}/members", 1) == [200]


def test_faults_on_one_url_play_in_plan_order():
    faults = [Fault("rate_limited", ORG), Fault("html", ORG), Fault("server_error", ORG)]
    with SampleQuay(faults=faults) as server:
        answers = [requests.get(server.url + ORG, headers=AUTH) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 200, 503, 200]
    assert answers[1].headers["Content-Type"].startswith("text/html")
    assert answers[3].json()["name"] == "buynlarge"


@pytest.mark.parametrize(
    ("form", "header"),
    [("seconds", r"^3$"), ("fraction", r"^3\.000$"), ("date", r"GMT$"), ("none", None)],
)
def test_a_429_carries_retry_after_in_the_form_asked(form, header):
    with SampleQuay(faults=[Fault("rate_limited", ORG, retry_after=form, wait=3)]) as server:
        answer = requests.get(server.url + ORG, headers=AUTH)
        logged = server.requests[0]
    assert answer.status_code == 429
    if header is None:
        assert "Retry-After" not in answer.headers
        assert logged.retry_after is None
    else:
        assert re.search(header, answer.headers["Retry-After"])
        assert logged.retry_after >= 2.99


def test_a_reset_cuts_the_answer_and_a_truncated_body_is_not_json():
    faults = [Fault("reset", f"^{ORG}$"), Fault("truncated_json", f"{ORG}/members")]
    with SampleQuay(faults=faults) as server:
        dropped = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
        with pytest.raises(dropped, match="reset by peer"):
            requests.get(server.url + ORG, headers=AUTH)
        cut = requests.get(server.url + f"{ORG}/members", headers=AUTH)
    assert cut.status_code == 200
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        json.loads(cut.content)


def test_a_stall_outlasts_a_client_timeout():
    with SampleQuay(faults=[Fault("stall", ORG, wait=30)]) as server:
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(server.url + ORG, headers=AUTH, timeout=0.2)
        assert requests.get(server.url + ORG, headers=AUTH, timeout=5).status_code == 200


def test_robots_answer_secrets_and_members_repeat_when_asked_to():
    faults = [Fault("robot_secrets"), Fault("duplicate_member")]
    with SampleQuay(faults=faults) as server:
        robots = requests.get(f"{server.url}{ORG}/robots?token=false", headers=AUTH).json()
        members = requests.get(server.url + TEAM, headers=AUTH).json()["members"]
    assert all("token" in robot for robot in robots["robots"])
    assert members[0] == members[-1]


def test_paging_faults_repeat_a_page_or_hand_back_the_cursor():
    listing = "/api/v1/repository?namespace=manyrepos"
    faults = [Fault("cursor_loop", times=1), Fault("repeat_page", times=1)]
    with SampleQuay(faults=faults) as server:
        first = requests.get(server.url + listing, headers=AUTH).json()
        cursor = first["next_page"]
        looped = requests.get(server.url + listing, {"next_page": cursor}, headers=AUTH).json()
        repeated = requests.get(server.url + listing, {"next_page": cursor}, headers=AUTH).json()
    assert looped["next_page"] == cursor
    assert looped["repositories"] != first["repositories"]
    assert repeated["repositories"] == first["repositories"]


def test_a_redirect_points_at_another_loopback_host_that_logs_credentials():
    with SampleQuay(faults=[Fault("redirect", ORG, status=307)]) as server:
        answer = requests.get(server.url + ORG, headers=AUTH, allow_redirects=False)
        target = answer.headers["Location"]
        requests.get(target, headers=AUTH)
        arrived = server.elsewhere.requests
        elsewhere, here = server.elsewhere.url, server.url
    assert answer.status_code == 307
    assert target.startswith(elsewhere)
    assert not target.startswith(here)
    assert [(entry.path, entry.authorization) for entry in arrived] == [(ORG, True)]


def test_the_rate_limit_answers_like_nginx_above_its_burst():
    with SampleQuay() as server:
        server.limit_rate(0.001, burst=2)
        answers = [requests.get(server.url + ORG, headers=AUTH) for _ in range(3)]
        counts = server.rate_counts
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Retry-After" not in answers[2].headers
    assert b"<center>nginx</center>" in answers[2].content
    assert counts == (2, 1)


def test_the_token_bucket_refills_at_its_rate_up_to_its_burst():
    now = [0.0]
    bucket = TokenBucket(per_second=2, burst=3, clock=lambda: now[0])
    assert [bucket.admit() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert [bucket.admit(), bucket.admit()] == [True, False]
    now[0] = 100.0
    assert [bucket.admit() for _ in range(4)] == [True, True, True, False]
    assert bucket.counts == (7, 3)


def test_refused_connections_come_back_on_the_same_port():
    with SampleQuay() as server:
        url = server.url
        server.refuse_connections()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url + ORG, headers=AUTH)
        server.accept_connections()
        assert requests.get(url + ORG, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("html", Fault("html")),
        (
            "server_error /members$ status=520 body=html times=always",
            Fault("server_error", "/members$", status=520, body="html", times=None),
        ),
        (
            "rate_limited ^/api/v1/user/$ retry_after=date wait=2.5 nth=3",
            Fault("rate_limited", "^/api/v1/user/$", retry_after="date", wait=2.5, nth=3),
        ),
    ],
)
def test_command_line_fault_specs_are_read(spec, expected):
    assert Fault.parse(spec) == expected


@pytest.mark.parametrize(
    "spec", ["explode", "server_error status=418", "rate_limited retry_after=soon", "html x=1"]
)
def test_impossible_faults_are_refused(spec):
    with pytest.raises(ValueError):  # noqa: PT011 - each spec fails on its own option
        Fault.parse(spec)


def test_command_line_plays_faults_and_rate_limit():
    command = [
        sys.executable,
        "-m",
        "sample_quay",
        "--fault",
        "server_error ^/api/v1/organization/buynlarge$ times=1",
        "--rate-limit",
        "0.001",
        "--rate-burst",
        "2",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().split()[-1]
            assert [requests.get(url + ORG, headers=AUTH).status_code for _ in range(3)] == [
                503,
                200,
                429,
            ]
        finally:
            process.terminate()

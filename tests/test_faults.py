"""Hostile networks and bad input, played by the sample server's fault plan over real HTTP.

One test (or one parametrized test) per fault, then the secrets, TLS, access-check and
anonymous cases, and last a combined run with every recoverable fault at once. Runs that
retry use fast backoff (10 ms first wait): in this process through the ``fast_retries``
fixture, or in a real ``tap-quay`` process started with the same setting. The one timing
check is that a ``Retry-After`` was waited in full, read from the server's request log.

Rows covered elsewhere against the sample server: an unknown or expired token, and a token
without user:read, in ``test_end_to_end.py``.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sample_quay import TOKENS, SampleQuay, ScaleSettings
from sample_quay.faults import Fault
from sample_quay.server import TlsFiles
from tap_quay import check, client
from tap_quay.errors import QuayError
from tap_quay.tap import check_base_url
from tests.conftest import TapRun, config_for
from tests.singer_output import SingerOutput

ROBOT_SECRET_MARK = "ROBOT-SECRET-PLACEHOLDER"
CHECK_EXECUTABLE = str(Path(sys.executable).with_name("tap-quay-check"))
# The installed entry point, with the first retry after 10 ms instead of 1 s.
FAST_TAP = (
    "from tap_quay import client; client.FIRST_RETRY_WAIT = 0.01; "
    "from tap_quay.tap import TapQuay; TapQuay.cli()"
)
MEMBERS = r"^/api/v1/organization/buynlarge/members$"
ORGREPO_TAGS = r"^/api/v1/repository/buynlarge/orgrepo/tag/$"
ORGREPO = ("buynlarge", "orgrepo")
IMAGE_STREAMS = ("tags", "manifests", "manifest_packages", "manifest_vulnerabilities")
ACCESS_STREAMS = ("user", "organization_members", "robot_accounts", "teams", "team_members")


def run_fast_tap(config: dict, tmp_path: Path) -> TapRun:
    """Run tap-quay in its own process, as Meltano would, but with fast retries."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [sys.executable, "-c", FAST_TAP, "--config", str(config_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    return TapRun(done.returncode, done.stdout, done.stderr)


def canonical(output: SingerOutput) -> dict[str, list[str]]:
    """Return each stream's records as sorted JSON lines, to compare runs exactly."""
    return {
        stream: sorted(json.dumps(record, sort_keys=True) for record in records)
        for stream, records in output.records.items()
        if records
    }


def without_repository(records: dict[str, list[str]], namespace: str, name: str) -> dict:
    """Drop what one repository's tags lead to: its tags, manifests and their reports."""
    kept = {}
    for stream, lines in records.items():
        if stream in IMAGE_STREAMS:
            lines = [
                line
                for line in lines
                if (json.loads(line)["namespace"], json.loads(line)["repository"])
                != (namespace, name)
            ]
        kept[stream] = lines
    return {stream: lines for stream, lines in kept.items() if lines}


def answers_to(server: SampleQuay, pattern: str) -> list:
    """Return the logged answers to requests whose path matches a pattern."""
    return [entry for entry in server.requests if re.search(pattern, entry.path)]


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """Return the tap's log messages of one level."""
    return [record.getMessage() for record in caplog.records if record.levelno == level]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Fail if any log record carries an exception's traceback."""
    assert all(record.exc_info is None for record in caplog.records)
    assert "Traceback" not in caplog.text


@pytest.fixture(scope="module")
def clean_buynlarge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Return the records of a run without faults over buynlarge."""
    with SampleQuay() as server:
        run = run_fast_tap(config_for(server), tmp_path_factory.mktemp("clean"))
    assert run.returncode == 0, run.stderr[-2000:]
    return canonical(run.output)


@pytest.fixture
def quay():
    with SampleQuay() as server:
        yield server


# 429 ------------------------------------------------------------------------


@pytest.mark.parametrize(("form", "seconds"), [("seconds", 1), ("date", 1), ("fraction", 0.4)])
def test_a_429_is_retried_after_waiting_at_least_its_retry_after(
    quay, sync_in_process, fast_retries, clean_buynlarge, form, seconds
):
    quay.faults = [Fault("rate_limited", MEMBERS, retry_after=form, wait=seconds)]
    code, output = sync_in_process(config_for(quay))
    refused, retried = answers_to(quay, MEMBERS)
    assert code == 0
    assert canonical(output) == clean_buynlarge
    assert (refused.status, retried.status) == (429, 200)
    assert refused.retry_after >= seconds * 0.99
    assert retried.started - refused.finished >= refused.retry_after


def test_a_429_without_retry_after_backs_off_exponentially(
    quay, sync_in_process, monkeypatch, caplog, clean_buynlarge
):
    monkeypatch.setattr(client, "FIRST_RETRY_WAIT", 0.1)
    quay.faults = [Fault("rate_limited", MEMBERS, retry_after="none", times=3)]
    # One request at a time: no prefetching worker answers the 429s before the SDK does.
    code, output = sync_in_process(config_for(quay, max_concurrency=1))
    waits = [
        float(re.search(r"retrying in ([\d.]+) s", message).group(1))
        for message in messages(caplog, logging.WARNING)
        if message.startswith("organization_members: retrying")
    ]
    assert code == 0
    assert canonical(output) == clean_buynlarge
    assert [entry.retry_after for entry in answers_to(quay, MEMBERS)] == [None] * 4
    assert len(waits) == 3
    assert waits[0] < waits[1] < waits[2]


def test_a_retry_after_beyond_max_retry_wait_fails_that_resource_only(
    quay, sync_in_process, fast_retries, caplog, clean_buynlarge
):
    quay.faults = [Fault("rate_limited", ORGREPO_TAGS, wait=30, times=None)]
    code, output = sync_in_process(config_for(quay, max_retry_wait=5))
    errors = messages(caplog, logging.ERROR)
    assert code == 1
    assert len(answers_to(quay, ORGREPO_TAGS)) == 1
    assert canonical(output) == without_repository(clean_buynlarge, *ORGREPO)
    assert any("max_retry_wait" in e and "/buynlarge/orgrepo/tag/" in e for e in errors)


# 5xx and dropped connections --------------------------------------------------


@pytest.mark.parametrize("body", ["json", "html"])
@pytest.mark.parametrize("status", [500, 502, 503, 504, 520])
def test_server_errors_are_retried_until_they_pass(
    quay, sync_in_process, fast_retries, clean_buynlarge, status, body
):
    quay.faults = [Fault("server_error", MEMBERS, status=status, body=body, times=2)]
    code, output = sync_in_process(config_for(quay))
    assert code == 0
    assert canonical(output) == clean_buynlarge
    assert [entry.status for entry in answers_to(quay, MEMBERS)] == [status, status, 200]


def test_a_resource_that_keeps_failing_is_reported_after_everything_else(
    quay, sync_in_process, fast_retries, caplog, clean_buynlarge
):
    quay.faults = [Fault("server_error", ORGREPO_TAGS, status=503, times=None)]
    code, output = sync_in_process(config_for(quay))
    summary = [m for m in messages(caplog, logging.ERROR) if "could not be read" in m]
    assert code == 1
    assert len(answers_to(quay, ORGREPO_TAGS)) == client.MAX_TRIES
    assert canonical(output) == without_repository(clean_buynlarge, *ORGREPO)
    assert len(summary) == 1
    assert summary[0].splitlines()[1:] == [
        "  - tags: tags of repository buynlarge/orgrepo: 503 Service Unavailable for "
        "/api/v1/repository/buynlarge/orgrepo/tag/"
    ]


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_a_dropped_or_stalled_connection_is_retried(
    quay, sync_in_process, fast_retries, clean_buynlarge, kind
):
    quay.faults = [Fault(kind, MEMBERS, wait=30)]
    code, output = sync_in_process(config_for(quay, request_timeout=0.5))
    answers = answers_to(quay, MEMBERS)
    assert code == 0
    assert canonical(output) == clean_buynlarge
    assert [entry.fault for entry in answers] == [kind, ""]


def test_a_refused_connection_is_retried(quay, sync_in_process, fast_retries, clean_buynlarge):
    class ListenAgainOnFirstRetry(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retrying" in record.getMessage():
                quay.accept_connections()

    handler = ListenAgainOnFirstRetry()
    logging.getLogger("tap-quay").addHandler(handler)
    try:
        quay.refuse_connections()
        code, output = sync_in_process(config_for(quay))
    finally:
        logging.getLogger("tap-quay").removeHandler(handler)
    assert code == 0
    assert canonical(output) == clean_buynlarge


# Bodies that are not JSON -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "content_type"), [("html", "text/html"), ("truncated_json", "application/json")]
)
def test_a_body_that_is_not_json_fails_that_resource_in_one_line(
    quay, sync_in_process, fast_retries, caplog, clean_buynlarge, kind, content_type
):
    quay.faults = [Fault(kind, ORGREPO_TAGS, times=None)]
    code, output = sync_in_process(config_for(quay))
    failures = [m for m in messages(caplog, logging.ERROR) if m.startswith("tags: could not")]
    assert code == 1
    assert canonical(output) == without_repository(clean_buynlarge, *ORGREPO)
    assert len(failures) == 1
    assert "\n" not in failures[0]
    assert "/api/v1/repository/buynlarge/orgrepo/tag/" in failures[0]
    assert content_type in failures[0]
    assert_no_traceback(caplog)


# Paging that makes no progress ----------------------------------------------------


@pytest.mark.parametrize(("kind", "pages_read"), [("repeat_page", 1), ("cursor_loop", 2)])
def test_a_repository_cursor_that_makes_no_progress_stops_paging(
    quay, sync_in_process, caplog, kind, pages_read
):
    quay.faults = [Fault(kind, r"^/api/v1/repository$", times=None)]
    config = config_for(quay, organizations=["manyrepos"], collect_vulnerabilities=False)
    code, output = sync_in_process(config)
    keys = output.keys("repositories")
    assert code == 1
    assert len(keys) == len(set(keys)) == 100 * pages_read
    assert any("stopped paging" in m for m in messages(caplog, logging.ERROR))
    assert_no_traceback(caplog)


def test_a_tag_page_that_repeats_stops_paging(sync_in_process, caplog):
    scale = ScaleSettings(repos_per_org=1, active_tags=230, dead_tags=0, manifest_lists=0)
    faults = [Fault("repeat_page", r"/tag/$", times=None)]
    with SampleQuay(scale=scale, faults=faults) as server:
        config = config_for(server, organizations=["gen-org-000"], collect_vulnerabilities=False)
        code, output = sync_in_process(config)
    keys = output.keys("tags")
    assert code == 1
    assert len(keys) == len(set(keys)) == 100
    assert any("stopped paging" in m for m in messages(caplog, logging.ERROR))


# What Quay should not send ---------------------------------------------------------


def test_robot_secrets_sent_despite_token_false_are_dropped(quay, tmp_path, clean_buynlarge):
    quay.faults = [Fault("robot_secrets", times=None)]
    run = run_fast_tap(config_for(quay), tmp_path)
    robots_queries = [entry.query for entry in answers_to(quay, r"/robots$")]
    assert run.returncode == 0, run.stderr[-2000:]
    assert quay.faults_injected["robot_secrets"] == len(robots_queries) > 0
    assert all("token=false" in query for query in robots_queries)
    assert canonical(run.output)["robot_accounts"] == clean_buynlarge["robot_accounts"]
    assert ROBOT_SECRET_MARK not in run.stdout + run.stderr


def test_a_team_member_listed_twice_is_one_record(quay, sync_in_process, clean_buynlarge):
    quay.faults = [Fault("duplicate_member", times=None)]
    code, output = sync_in_process(config_for(quay))
    assert code == 0
    assert quay.faults_injected["duplicate_member"] > 0
    assert canonical(output)["team_members"] == clean_buynlarge["team_members"]


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_another_host_never_receives_the_token(quay, sync_in_process, caplog, status):
    quay.faults = [Fault("redirect", MEMBERS, status=status, times=None)]
    code, _ = sync_in_process(config_for(quay))
    arrived = quay.elsewhere.requests
    assert code == 1
    assert arrived == []  # not followed at all, so neither the token nor anything else went
    errors = messages(caplog, logging.ERROR)
    assert any("was redirected" in m and quay.elsewhere.url in m for m in errors)
    assert TOKENS["full"] not in caplog.text


# Tokens --------------------------------------------------------------------------


def test_an_unknown_token_is_named_invalid_even_behind_server_errors(
    quay, sync_in_process, fast_retries, caplog
):
    quay.faults = [Fault("server_error", r"/user/$", status=502, body="html", times=2)]
    config = {"base_url": quay.url, "auth_token": "canary-unknown-token-7f3e"}
    code, output = sync_in_process(config)
    assert code == 1
    assert output.count("organizations") == 0
    assert any("token is invalid" in m for m in messages(caplog, logging.ERROR))
    assert "canary-unknown-token-7f3e" not in caplog.text


def test_a_token_without_org_admin_leaves_access_empty_with_one_warning_per_kind(
    quay, sync_in_process, caplog
):
    config = config_for(quay, auth_token=TOKENS["repo_read"])
    config["organizations"] = ["buynlarge", "manyrepos"]
    code, output = sync_in_process(config)
    warnings = Counter(m.split(":")[0] for m in messages(caplog, logging.WARNING))
    assert code == 0
    assert all(output.count(stream) == 0 for stream in ACCESS_STREAMS)
    assert output.count("tags") > 0
    assert warnings["organization_members"] == warnings["robot_accounts"] == 1
    assert warnings["teams"] == 1


# Secrets under every fault ---------------------------------------------------------


def test_no_secret_appears_in_any_output_under_faults_that_keep_failing(tmp_path):
    faults = [
        Fault("robot_secrets", times=None),
        Fault("server_error", ORGREPO_TAGS, status=502, body="html", times=None),
        Fault("html", r"/multiarch/tag/$", times=None),
        Fault("truncated_json", r"/anotherorgrepo/tag/$", times=None),
        Fault("reset", r"/team/owners/members$", times=None),
        Fault("stall", r"/team/readers/members$", wait=30, times=None),
        Fault("rate_limited", r"/team/creators/members$", wait=900, times=None),
        Fault("server_error", r"/organization/buynlarge$", status=520, times=1),
    ]
    with SampleQuay(faults=faults) as server:
        run = run_fast_tap(config_for(server, request_timeout=0.3), tmp_path)
        with_redirect = SampleQuay(faults=[Fault("redirect", r"/robots$", times=None)])
        with with_redirect:
            redirected = run_fast_tap(config_for(with_redirect), tmp_path)  # config rewritten
        methods = {entry.method for entry in server.requests + with_redirect.requests}
    for done in (run, redirected):
        assert done.returncode == 1
        assert "could not" in done.stderr or "was redirected" in done.stderr
        for secret in (TOKENS["full"], ROBOT_SECRET_MARK):
            assert secret not in done.stdout
            assert secret not in done.stderr
        assert "Traceback" not in done.stderr
    assert methods == {"GET"}


# TLS and plain HTTP -----------------------------------------------------------------


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Make a private CA and a certificate it signed for 127.0.0.1, with openssl."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
        "-keyout", "ca.key", "-out", "ca.pem",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
    )  # fmt: skip
    return {name: str(folder / name) for name in ("ca.pem", "server.pem", "server.key")}


def test_certificates_are_verified_unless_the_private_ca_is_given(
    private_ca, sync_in_process, caplog, clean_buynlarge
):
    tls = TlsFiles(private_ca["server.pem"], private_ca["server.key"])
    with SampleQuay(tls=tls) as server:
        assert server.url.startswith("https://127.0.0.1:")
        refused_code, refused = sync_in_process(config_for(server))
        refused_requests = len(server.requests)
        code, output = sync_in_process(config_for(server, ca_bundle=private_ca["ca.pem"]))
    assert refused_code == 1
    assert refused_requests == 0
    assert refused.count("organizations") == 0
    assert any("ca_bundle" in m for m in messages(caplog, logging.ERROR))
    assert code == 0
    assert canonical(output) == clean_buynlarge


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("https://quay.example.com", True),
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:8080", True),
        ("http://localhost:8080", True),
        ("http://quay.example.com", False),
        ("http://10.0.0.5", False),
        ("ftp://quay.example.com", False),
    ],
)
def test_plain_http_is_refused_for_other_hosts_unless_allowed(base_url, allowed):
    if allowed:
        check_base_url({"base_url": base_url})
    else:
        with pytest.raises(QuayError, match="allow_insecure_http"):
            check_base_url({"base_url": base_url})
    if base_url.startswith("http:"):
        check_base_url({"base_url": base_url, "allow_insecure_http": True})


# The access check ---------------------------------------------------------------------


def check_access(config: dict, tmp_path: Path) -> TapRun:
    """Run tap-quay-check on a config."""
    config_file = tmp_path / "check.json"
    config_file.write_text(json.dumps(config))
    command = [CHECK_EXECUTABLE, "--config", str(config_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return TapRun(done.returncode, done.stdout, done.stderr)


def result_of(run: TapRun, check: str) -> str:
    """Return the result column of one row of the check's table."""
    row = next(line for line in run.stdout.splitlines() if line.startswith(check + "  "))
    return row[len(check) :].split()[0]


def test_access_check_passes_with_every_scope(quay, tmp_path):
    run = check_access({"base_url": quay.url, "auth_token": TOKENS["full"]}, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    for row in ("token", "user:read", "org:admin on buynlarge", "repo:read"):
        assert result_of(run, row) == "ok", row
    assert result_of(run, "security scanner") == "ok"
    assert TOKENS["full"] not in run.stdout + run.stderr
    assert {entry.method for entry in quay.requests} == {"GET"}


@pytest.mark.parametrize(
    ("token", "row"),
    [
        (TOKENS["repo_read"], "org:admin on buynlarge"),
        (TOKENS["reader_full"], "org:admin on buynlarge"),
        (TOKENS["expired"], "token"),
        (None, "token"),
    ],
)
def test_access_check_fails_and_names_what_to_fix(quay, tmp_path, token, row):
    config = {"base_url": quay.url, "organizations": ["buynlarge"]}
    if token:
        config["auth_token"] = token
    run = check_access(config, tmp_path)
    assert run.returncode == 1
    assert result_of(run, row) == "FIX"
    assert "Traceback" not in run.stderr
    if token:
        assert token not in run.stdout + run.stderr


def test_access_check_reports_a_scanner_that_is_down(tmp_path, fast_retries, capsys):
    config_file = tmp_path / "check.json"
    with SampleQuay(scanner="down") as server:
        config_file.write_text(json.dumps({"base_url": server.url, "auth_token": TOKENS["full"]}))
        with pytest.raises(SystemExit) as stop:
            check.main(["--config", str(config_file)])
    run = TapRun(int(stop.value.code or 0), capsys.readouterr().out, "")
    assert run.returncode == 0
    assert result_of(run, "security scanner") == "FIX"
    assert "520" in run.stdout


# Anonymous mode -------------------------------------------------------------------------


def test_without_a_token_public_repositories_are_read_and_access_stays_empty(tmp_path):
    scale = ScaleSettings(repos_per_org=5, active_tags=3, dead_tags=0, manifest_lists=0)
    with SampleQuay(scale=scale) as server:
        config = {"base_url": server.url, "organizations": ["gen-org-000"]}
        run = run_fast_tap(config, tmp_path)
        asked = {entry.path for entry in server.requests}
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert run.returncode == 0, run.stderr[-2000:]
    assert [r["name"] for r in run.output.records["repositories"]] == ["app-0004"]
    for stream in ("tags", "manifests", "manifest_packages"):
        assert run.output.count(stream) > 0, stream
    assert all(run.output.count(stream) == 0 for stream in ACCESS_STREAMS)
    assert len(warnings) == 1
    assert "auth_token" in warnings[0]
    assert not [path for path in asked if path.endswith(("/members", "/robots", "/user/"))]


# Everything at once -------------------------------------------------------------------


#: Every fault the tap is expected to recover from, each transient (once or twice per URL).
RECOVERABLE_FAULTS = [
    Fault("rate_limited", r"^/api/v1/organization/buynlarge$", retry_after="seconds", wait=1),
    Fault("rate_limited", r"^/api/v1/organization/manyrepos$", retry_after="date", wait=1),
    Fault("rate_limited", r"/robots$", retry_after="fraction", wait=0.2, nth=1),
    Fault("rate_limited", r"/team/[^/]+/members$", retry_after="none", nth=1),
    Fault("server_error", r"^/api/v1/user/$", status=500, body="json"),
    Fault("server_error", r"^/api/v1/repository$", status=502, body="html"),
    Fault("server_error", r"/tag/$", status=503, body="json"),
    Fault("server_error", r"/manifest/[^/]+$", status=504, body="html"),
    Fault("server_error", r"/security$", status=520, body="json"),
    Fault("reset", r"/organization/[^/]+/members$"),
    Fault("stall", r"^/api/v1/discovery$", wait=30),
    Fault("html", r"^/api/v1/organization/library$"),
    Fault("truncated_json", r"/security$"),
    Fault("robot_secrets", times=None),
    Fault("duplicate_member", times=None),
]


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory):
    """Sync the whole sample registry cleanly, then again with every recoverable fault on."""
    runs = {}
    for name, faults, rate in (("clean", [], None), ("faults", RECOVERABLE_FAULTS, 100.0)):
        with SampleQuay(faults=faults) as server:
            server.limit_rate(rate, burst=5)
            config = {"base_url": server.url, "auth_token": TOKENS["full"], "request_timeout": 2}
            run = run_fast_tap(config, tmp_path_factory.mktemp(name))
            runs[name] = (run, server.requests, server.faults_injected, server.rate_counts)
    return runs


def test_a_run_with_every_fault_on_produces_exactly_the_records_of_a_clean_run(combined):
    clean, _, _, _ = combined["clean"]
    run, requests, injected, (accepted, rejected) = combined["faults"]
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert run.returncode == 0, run.stderr[-3000:]
    assert canonical(run.output) == canonical(clean.output)
    assert set(injected) == {fault.kind for fault in RECOVERABLE_FAULTS}
    assert accepted + rejected == len(requests)
    print(
        f"\ncombined run: {len(requests)} requests ({rejected} refused by the rate limit), "
        f"faults {injected}, {sum(map(len, canonical(run.output).values()))} records"
    )


def test_the_combined_run_sends_only_gets_and_leaks_no_secret(combined):
    run, requests, _, _ = combined["faults"]
    assert {entry.method for entry in requests} == {"GET"}
    for secret in (TOKENS["full"], ROBOT_SECRET_MARK):
        assert secret not in run.stdout
        assert secret not in run.stderr
    assert "Traceback" not in run.stderr

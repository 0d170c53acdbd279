"""The installed tap-quay process against the sample Quay server, as a user would run it."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from sample_quay import TOKENS, SampleQuay, ScaleSettings
from tap_quay import progress
from tests import recorded
from tests.conftest import TAP_EXECUTABLE, config_for, run_tap_process

STREAMS = (
    "user",
    "organizations",
    "organization_members",
    "robot_accounts",
    "teams",
    "team_members",
    "repositories",
    "tags",
    "manifests",
    "manifest_packages",
    "manifest_vulnerabilities",
)
TARGET_JSONL = Path(__file__).resolve().parent.parent / ".venv-target-jsonl/bin/target-jsonl"
ROBOT_SECRET_MARK = "ROBOT-SECRET-PLACEHOLDER"
AMD64 = "sha256:98fab773a1e87d5790b197cf4d7bc702555ffe6143267dc4fb5d2a0eaaf40d6f"
ARM64 = "sha256:a8b7eab3b074648546e6083f5da3c65a9c5c54a98d2aaf580ebe75538454c3d2"
MULTIARCH_LIST = "sha256:cb6902531bf3632d24b194fdce4f63a2e6f5fa63e9d67699e7c3233ca4148cce"
ORGREPO_PROD = "sha256:5add2b6543fbc044d0185e4265abfaa99e27c0d9b290c53d892fa2919f006972"


@pytest.fixture(scope="module")
def server():
    with SampleQuay() as sample:
        yield sample


@pytest.fixture(scope="module")
def full_run(server, tmp_path_factory):
    server.clear_requests()
    config = {"base_url": server.url, "auth_token": TOKENS["full"]}
    run = run_tap_process(config, tmp_path_factory.mktemp("full"))
    return run, server.requests


def of(records: list[dict], **fields: str) -> list[dict]:
    """Return the records whose fields have the given values."""
    return [r for r in records if all(r.get(k) == v for k, v in fields.items())]


def test_full_sync_exits_cleanly_with_every_stream(full_run):
    run, _ = full_run
    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.output.schemas) == set(STREAMS)
    for stream in STREAMS:
        assert run.output.count(stream) > 0, stream


def test_every_record_is_valid_against_its_schema_and_keys_are_unique(full_run):
    output = full_run[0].output
    for stream in STREAMS:
        assert output.invalid_records(stream) == [], stream
        keys = output.keys(stream)
        assert len(keys) == len(set(keys)), stream


def test_discovered_organizations_are_the_users(full_run):
    output = full_run[0].output
    expected = recorded.names(recorded.body("user")["organizations"])
    assert recorded.names(output.records["organizations"]) == expected
    assert [u["username"] for u in output.records["user"]] == ["devtable"]


def test_access_streams_match_the_recorded_organization(full_run):
    records = full_run[0].output.records
    members = of(records["organization_members"], organization="buynlarge")
    robots = of(records["robot_accounts"], organization="buynlarge")
    teams = of(records["teams"], organization="buynlarge")
    assert recorded.names(members) == recorded.names(
        recorded.body("organization_buynlarge_members")["members"]
    )
    assert recorded.names(robots) == recorded.names(
        recorded.body("organization_buynlarge_robots_token-false_permissions-true")["robots"]
    )
    assert recorded.names(teams) == set(recorded.body("organization_buynlarge")["teams"])
    for team in ("owners", "creators", "readers", "synced"):
        listed = recorded.body(f"organization_buynlarge_team_{team}_members")["members"]
        emitted = of(records["team_members"], organization="buynlarge", team=team)
        assert recorded.names(emitted) == recorded.names(listed), team


def test_every_repository_page_is_read_once(full_run):
    run, requests = full_run
    repositories = of(run.output.records["repositories"], namespace="manyrepos")
    pages = [r for r in requests if r.path == "/api/v1/repository" and "manyrepos" in r.query]
    expected = set()
    for page in (1, 2, 3):
        expected |= recorded.names(
            recorded.body(f"repository_namespace-manyrepos_follow_page{page}")["repositories"]
        )
    assert recorded.names(repositories) == expected
    assert len(repositories) == 205
    assert len(pages) == 3


def test_tags_and_manifests_of_a_multi_arch_repository(full_run):
    records = full_run[0].output.records
    tags = of(records["tags"], namespace="buynlarge", repository="multiarch")
    listed = recorded.body("repository_buynlarge_multiarch_tag_limit-100_page-1_active")["tags"]
    assert recorded.names(tags) == recorded.names(listed)

    manifests = {m["digest"]: m for m in of(records["manifests"], repository="multiarch")}
    assert set(manifests) == {t["manifest_digest"] for t in listed} | {AMD64, ARM64}
    assert manifests[MULTIARCH_LIST]["is_manifest_list"] is True
    assert manifests[MULTIARCH_LIST]["parent_digest"] is None
    assert manifests[AMD64]["parent_digest"] == MULTIARCH_LIST
    assert manifests[AMD64]["platform"] == {"architecture": "amd64", "os": "linux"}
    assert manifests[ARM64]["platform"]["architecture"] == "arm64"


def test_each_digest_is_fetched_once_per_repository(full_run):
    _, requests = full_run
    manifest_paths = [r.path for r in requests if "/manifest/" in r.path]
    assert len(manifest_paths) == len(set(manifest_paths))


def test_packages_and_findings_come_from_each_images_own_report(full_run):
    records = full_run[0].output.records
    statuses = {m["digest"]: m["security_status"] for m in records["manifests"]}
    assert statuses[MULTIARCH_LIST] == "queued"
    assert statuses[AMD64] == "scanned"
    assert statuses[ARM64] == "manifest_layer_too_large"
    assert {"scanned", "queued", "failed", "unsupported"} <= set(statuses.values())

    features = recorded.security_features("secscan_scanned_orgrepo_prod_vulns")
    packages = of(records["manifest_packages"], manifest_digest=ORGREPO_PROD)
    findings = of(records["manifest_vulnerabilities"], manifest_digest=ORGREPO_PROD)
    assert [(p["Name"], p["Version"]) for p in packages] == [
        (f["Name"], f["Version"]) for f in features
    ]
    assert len(findings) == sum(len(f["Vulnerabilities"]) for f in features)
    assert of(records["manifest_packages"], manifest_digest=MULTIARCH_LIST) == []
    assert of(records["manifest_packages"], manifest_digest=AMD64)


def test_timestamps_are_rfc3339_utc(full_run):
    records = full_run[0].output.records
    prod = of(records["tags"], repository="orgrepo", name="prod")[0]
    assert prod["start_ts"] == "2026-12-04T15:13:20Z"  # epoch 1796397200 in the recording
    assert prod["last_modified"] == "2026-12-04T15:13:20Z"  # "Fri, 04 Dec 2026 15:13:20 -0000"
    robot = of(records["robot_accounts"], name="buynlarge+coolrobot")[0]
    assert robot["created"] == "2026-12-04T15:13:20Z"


def test_no_secret_reaches_stdout_or_stderr(full_run):
    run, requests = full_run
    for text in (run.stdout, run.stderr):
        assert ROBOT_SECRET_MARK not in text
        assert TOKENS["full"] not in text
    robots_queries = [r.query for r in requests if r.path.endswith("/robots")]
    assert robots_queries
    assert all("token=false" in q for q in robots_queries)


def test_only_get_requests_are_sent(full_run):
    _, requests = full_run
    assert {r.method for r in requests} == {"GET"}


def test_state_holds_no_entry_per_resource(full_run):
    output = full_run[0].output
    assert output.states
    final = output.states[-1]["bookmarks"]
    assert all("partitions" not in bookmark for bookmark in final.values())
    assert max(len(line) for line in output.state_lines) < 10_000


def test_output_loads_into_target_jsonl(full_run, tmp_path):
    assert TARGET_JSONL.exists(), "run bash scripts/setup.sh to install target-jsonl"
    run, _ = full_run
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"destination_path": str(tmp_path), "do_timestamp_file": False}))
    loaded = subprocess.run(
        [str(TARGET_JSONL), "--config", str(config)],
        input=run.stdout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    for stream in STREAMS:
        lines = (tmp_path / f"{stream}.jsonl").read_text().splitlines()
        assert len(lines) == run.output.count(stream), stream


def test_tag_pages_are_followed_until_has_additional_is_false(tmp_path):
    scale = ScaleSettings(
        orgs=1,
        repos_per_org=1,
        active_tags=230,
        dead_tags=0,
        manifest_lists=0,
        packages=1,
        vulnerabilities=0,
    )
    with SampleQuay(scale=scale) as sample:
        config = {
            "base_url": sample.url,
            "auth_token": TOKENS["full"],
            "organizations": ["gen-org-000"],
            "collect_vulnerabilities": False,
        }
        run = run_tap_process(config, tmp_path)
        tag_pages = [r for r in sample.requests if r.path.endswith("/tag/")]
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.output.count("tags") == 230
    assert len(tag_pages) == 3
    assert all("limit=100" in r.query and "onlyActiveTags=true" in r.query for r in tag_pages)


def test_a_token_without_user_read_syncs_the_listed_organizations(server, tmp_path):
    config = config_for(server, "repo_read")
    run = run_tap_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.output.count("user") == 0
    assert run.output.count("organization_members") == run.output.count("robot_accounts") == 0
    assert run.output.count("tags") > 0
    assert run.output.count("manifests") > 0
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert any("user:" in line and "401" in line and "user:read" in line for line in warnings)
    assert sum("robot_accounts" in line for line in warnings) == 1


def test_a_token_without_user_read_cannot_discover_organizations(server, tmp_path):
    run = run_tap_process({"base_url": server.url, "auth_token": TOKENS["repo_read"]}, tmp_path)
    assert run.returncode == 1
    assert "user:read" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.output.count("repositories") == 0


@pytest.mark.parametrize("token", [TOKENS["expired"], "not-a-token-Quay-knows"])
@pytest.mark.parametrize("organizations", [[], ["buynlarge"]])
def test_an_unknown_or_expired_token_stops_the_run(server, tmp_path, token, organizations):
    config = {"base_url": server.url, "auth_token": token, "organizations": organizations}
    run = run_tap_process(config, tmp_path)
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert any("token" in line for line in errors)
    assert token not in run.stderr
    assert run.output.count("repositories") == 0


def test_a_plain_member_sees_what_quay_shows_members(server, tmp_path):
    config = config_for(server, "reader_full")
    run = run_tap_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.output.count("organization_members") == 0
    assert run.output.count("robot_accounts") > 0
    assert ROBOT_SECRET_MARK not in run.stdout + run.stderr


@pytest.mark.parametrize("scanner", ["off"])
def test_a_registry_without_scanner_yields_no_security_rows(tmp_path, scanner):
    with SampleQuay(scanner=scanner) as sample:
        config = config_for(sample)
        run = run_tap_process(config, tmp_path)
        security_calls = [r for r in sample.requests if r.path.endswith("/security")]
    assert run.returncode == 0, run.stderr[-2000:]
    assert security_calls == []
    assert (
        run.output.count("manifest_packages") == run.output.count("manifest_vulnerabilities") == 0
    )
    assert {m["security_status"] for m in run.output.records["manifests"]} == {"no_scanner"}


def test_a_failing_scanner_is_retried_then_reported_after_the_rest(
    tmp_path, sync_in_process, fast_retries, caplog
):
    with SampleQuay(scanner="down") as sample:
        config = config_for(sample)
        code, output = sync_in_process(config)
        failed = [r for r in sample.requests if r.status == 520]
    statuses = {m["digest"]: m["security_status"] for m in output.records["manifests"]}
    assert code == 1
    assert statuses[ORGREPO_PROD] == "unavailable"
    assert statuses[ARM64] == "manifest_layer_too_large"
    assert len(failed) == 2 * 5  # two scanned images, five tries each
    assert "could not be read" in caplog.text


def test_tap_executable_reports_its_settings():
    about = subprocess.run(
        [TAP_EXECUTABLE, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    settings = json.loads(about.stdout)["settings"]["properties"]
    for name in (
        "base_url",
        "auth_token",
        "organizations",
        "collect_vulnerabilities",
        "user_agent",
        "request_timeout",
    ):
        assert name in settings


def test_the_run_ends_with_a_summary_of_records_requests_and_time(full_run):
    run, requests = full_run
    summary = run.stderr[run.stderr.index("sync summary") :].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in summary[2:] if line[:1].isalpha()}
    for stream in STREAMS:
        assert int(rows[stream][0]) == run.output.count(stream), stream
    assert int(rows["total"][1]) == len(requests)
    assert any(line.startswith("elapsed:") for line in summary)


def test_skipped_resources_are_in_the_summary_with_their_reason(server, tmp_path):
    config = config_for(server, "reader_full")
    run = run_tap_process(config, tmp_path)
    summary = run.stderr[run.stderr.index("sync summary") :]
    assert "skipped: organization_members: 1 answered 403" in summary


def test_a_long_sync_logs_progress_per_stream(sync_in_process, caplog, monkeypatch, server):
    monkeypatch.setattr(progress, "PROGRESS_INTERVAL", 0.0)
    caplog.set_level(logging.INFO)
    config = config_for(server)
    code, output = sync_in_process(config)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress: ")]
    assert code == 0
    assert any(line.startswith("progress: tags: ") for line in lines)
    last_tags = [line for line in lines if line.startswith("progress: tags: ")][-1]
    assert f"tags: {output.count('tags')} records" in last_tags

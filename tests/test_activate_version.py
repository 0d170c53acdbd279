"""ACTIVATE_VERSION: once per stream, after its records, and only for streams read in full."""

from __future__ import annotations

import json

import pytest

from sample_quay import TOKENS, SampleQuay
from tests.conftest import config_for, run_tap_process
from tests.meltano_project import STREAMS


@pytest.fixture(scope="module")
def server():
    with SampleQuay() as sample:
        yield sample


def messages(stdout: str) -> list[dict]:
    """Parse every Singer message a run printed."""
    return [json.loads(line) for line in stdout.splitlines()]


def activated(stdout: str) -> list[str]:
    """Return the streams named by ACTIVATE_VERSION messages, in order."""
    return [m["stream"] for m in messages(stdout) if m["type"] == "ACTIVATE_VERSION"]


def test_each_stream_is_activated_once_after_its_last_record_with_the_records_version(
    server, tmp_path
):
    run = run_tap_process({"base_url": server.url, "auth_token": TOKENS["full"]}, tmp_path)
    sent = messages(run.stdout)

    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(activated(run.stdout)) == sorted(STREAMS)
    for stream in STREAMS:
        positions = [i for i, m in enumerate(sent) if m.get("stream") == stream]
        kinds = [sent[i]["type"] for i in positions]
        assert kinds[-1] == "ACTIVATE_VERSION", stream
        versions = {sent[i].get("version") for i in positions if sent[i]["type"] != "SCHEMA"}
        assert len(versions) == 1, f"{stream}: records and activation share one version"


def test_no_activate_version_when_turned_off(server, tmp_path):
    config = {
        "base_url": server.url,
        "auth_token": TOKENS["full"],
        "emit_activate_version_messages": False,
    }
    run = run_tap_process(config, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert activated(run.stdout) == []


def test_streams_the_token_may_not_read_are_not_activated(server, tmp_path):
    config = config_for(server, "repo_read")
    run = run_tap_process(config, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "organization_members" not in activated(run.stdout)
    assert "robot_accounts" not in activated(run.stdout)
    assert {"organizations", "repositories", "tags"} <= set(activated(run.stdout))
    assert "No ACTIVATE_VERSION for organization_members" in run.stderr


def test_a_failed_stream_and_the_streams_below_it_are_not_activated(sync_in_process, fast_retries):
    with SampleQuay(scanner="down") as sample:
        config = config_for(sample)
        code, output = sync_in_process(config)

    assert code == 1
    below_manifests = {"manifests", "manifest_packages", "manifest_vulnerabilities"}
    assert set(activated(output.stdout)) == set(STREAMS) - below_manifests


def test_a_child_stream_selected_alone_is_activated_once(server, tmp_path):
    config = {"base_url": server.url, "auth_token": TOKENS["full"]}
    catalog = json.loads(run_tap_process(config, tmp_path, "--discover").stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "tags"

    run = run_tap_process(config, tmp_path, catalog=catalog)

    assert run.returncode == 0, run.stderr[-2000:]
    assert activated(run.stdout) == ["tags"]


def test_no_activate_version_with_batch_files_whose_records_carry_no_version(server, tmp_path):
    config = {
        "base_url": server.url,
        "auth_token": TOKENS["full"],
        "organizations": ["buynlarge"],
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path}"},
        },
    }
    run = run_tap_process(config, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert any(m["type"] == "BATCH" for m in messages(run.stdout))
    assert activated(run.stdout) == []

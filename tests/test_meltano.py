"""tap-quay as a Meltano plugin: the project file, the Hub definition and a real `meltano run`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from jsonschema import Draft202012Validator

from sample_quay import TOKENS, SampleQuay
from tests.conftest import TAP_EXECUTABLE, run_tap_process
from tests.meltano_project import (
    HUB_DEFINITION,
    MELTANO,
    ROOT,
    STREAMS,
    meltano_environment,
    plugin,
    require,
    run_meltano,
)


@pytest.fixture(scope="module")
def about() -> dict:
    done = subprocess.run(
        [TAP_EXECUTABLE, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def declared(settings: list[dict]) -> list[tuple[str, str, bool]]:
    """Return each setting's name, kind and whether it is sensitive."""
    return [(s["name"], s.get("kind", "string"), s.get("sensitive", False)) for s in settings]


def test_hub_definition_is_generated_from_the_taps_about_output():
    check = subprocess.run(
        [sys.executable, "scripts/hub_definition.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_hub_definition_lists_every_setting_and_capability_with_the_token_sensitive(about):
    definition = yaml.safe_load(HUB_DEFINITION.read_text())
    assert definition["capabilities"] == about["capabilities"]
    assert [s["name"] for s in definition["settings"]] == list(about["settings"]["properties"])
    assert [s["name"] for s in definition["settings"] if s.get("sensitive")] == ["auth_token"]


def test_meltano_yml_declares_the_taps_settings_and_capabilities(about):
    extractor = plugin(ROOT / "meltano.yml", "extractors", "tap-quay")
    definition = yaml.safe_load(HUB_DEFINITION.read_text())
    assert extractor["capabilities"] == about["capabilities"]
    assert declared(extractor["settings"]) == declared(definition["settings"])


def test_meltano_yml_follows_meltanos_own_schema():
    require(MELTANO, "Meltano")
    shipped = "lib/python*/site-packages/meltano/schemas/meltano.schema.json"
    schema = json.loads(next(MELTANO.parent.parent.glob(shipped)).read_text())
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    errors = [error.message for error in Draft202012Validator(schema).iter_errors(project)]
    assert errors == []


def test_meltano_add_from_ref_accepts_the_hub_definition(tmp_path):
    require(MELTANO, "Meltano")
    project = tmp_path / "project"
    project.mkdir()
    (project / "meltano.yml").write_text(
        "default_environment: dev\nenvironments:\n  - name: dev\n"
        "send_anonymous_usage_stats: false\nproject_id: from-ref-check\n"
    )
    env = meltano_environment(tmp_path / "meltano.db")

    added = run_meltano(
        "add",
        "--no-install",
        "--from-ref",
        str(HUB_DEFINITION),
        "tap-quay",
        env=env,
        project=project,
    )

    assert added.returncode == 0, added.stderr[-3000:]
    extractor = plugin(project / "meltano.yml", "extractors", "tap-quay")
    definition = yaml.safe_load(HUB_DEFINITION.read_text())
    assert extractor["namespace"] == "tap_quay"
    assert extractor["capabilities"] == definition["capabilities"]
    assert declared(extractor["settings"]) == declared(definition["settings"])


def test_meltano_runs_the_tap_into_target_jsonl_against_the_sample_server(tmp_path):
    require(MELTANO, "Meltano")
    out = tmp_path / "out"
    out.mkdir()
    with SampleQuay() as server:
        env = meltano_environment(
            tmp_path / "meltano.db",
            TAP_QUAY_BASE_URL=server.url,
            TAP_QUAY_AUTH_TOKEN=TOKENS["full"],
            TARGET_JSONL_DESTINATION_PATH=str(out),
        )
        run = run_meltano("run", "tap-quay", "target-jsonl", env=env)
        sent = run_tap_process(
            {"base_url": server.url, "auth_token": TOKENS["full"]}, tmp_path
        ).output

    assert run.returncode == 0, run.stderr[-3000:]
    written = {path.stem: len(path.read_text().splitlines()) for path in out.glob("*.jsonl")}
    assert written == {stream: sent.count(stream) for stream in STREAMS}
    assert TOKENS["full"] not in run.stdout + run.stderr


def test_meltano_passes_settings_from_the_environment_and_keeps_the_token_secret(tmp_path):
    require(MELTANO, "Meltano")
    env = meltano_environment(
        tmp_path / "meltano.db",
        TAP_QUAY_AUTH_TOKEN="canary-token-7d2e",
        TAP_QUAY_ORGANIZATIONS='["acme", "globex"]',
        TAP_QUAY_COLLECT_VULNERABILITIES="false",
    )

    listed = run_meltano("config", "list", "tap-quay", env=env)
    printed = run_meltano("config", "--unsafe", "print", "tap-quay", "--format=json", env=env)

    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "canary-token-7d2e" not in listed.stdout
    assert "auth_token [env: TAP_QUAY_AUTH_TOKEN] current value: (redacted)" in listed.stdout
    config = json.loads(printed.stdout)
    assert config["organizations"] == ["acme", "globex"]
    assert config["collect_vulnerabilities"] is False
    assert config["auth_token"] == "canary-token-7d2e"

"""Settings as users meet them: the README's table, and TAP_QUAY_* environment variables."""

from __future__ import annotations

import os
import subprocess
import sys

from sample_quay import TOKENS, SampleQuay
from tap_quay.environment import with_numbers
from tests.conftest import TAP_EXECUTABLE
from tests.meltano_project import PLUGIN_PREFIXES, ROOT
from tests.singer_output import SingerOutput


def test_readme_settings_table_is_generated_from_the_taps_about_output():
    check = subprocess.run(
        [sys.executable, "scripts/readme_settings.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_every_setting_is_read_from_its_environment_variable(tmp_path):
    shell = {k: v for k, v in os.environ.items() if not k.startswith(PLUGIN_PREFIXES)}
    with SampleQuay() as server:
        env = {
            **shell,
            "TAP_QUAY_BASE_URL": server.url,
            "TAP_QUAY_AUTH_TOKEN": TOKENS["full"],
            "TAP_QUAY_ORGANIZATIONS": '["buynlarge"]',
            "TAP_QUAY_COLLECT_VULNERABILITIES": "false",
            "TAP_QUAY_REQUEST_TIMEOUT": "12.5",
            "TAP_QUAY_USER_AGENT": "settings-check/1",
            "TAP_QUAY_EMIT_ACTIVATE_VERSION_MESSAGES": "false",
        }
        done = subprocess.run(
            [TAP_EXECUTABLE, "--config", "ENV"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        callers = {request.identity for request in server.requests}

    assert done.returncode == 0, done.stderr[-2000:]
    output = SingerOutput.parse(done.stdout)
    assert [record["name"] for record in output.records["organizations"]] == ["buynlarge"]
    assert output.count("manifests") > 0
    assert output.count("manifest_packages") == 0
    assert "ACTIVATE_VERSION" not in done.stdout
    assert callers == {"full"}
    assert TOKENS["full"] not in done.stdout + done.stderr


def test_number_settings_given_as_text_become_numbers():
    schema = {
        "properties": {
            "request_timeout": {"type": ["number", "null"]},
            "user_agent": {"type": ["string", "null"]},
        }
    }
    config = {"request_timeout": "12.5", "user_agent": "7"}

    assert with_numbers(config, schema) == {"request_timeout": 12.5, "user_agent": "7"}
    assert with_numbers({"request_timeout": "soon"}, schema) == {"request_timeout": "soon"}

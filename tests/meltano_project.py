"""Run Meltano, as scripts/setup.sh installs it, on this repository's meltano.yml."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tap_quay.streams import STREAM_TYPES

ROOT = Path(__file__).resolve().parent.parent
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"
HUB_DEFINITION = ROOT / "hub" / "tap-quay.yml"
STREAMS = tuple(stream_type.name for stream_type in STREAM_TYPES)
#: Variables that configure the project's plugins; a developer's shell may hold some.
PLUGIN_PREFIXES = ("TAP_QUAY_", "TARGET_JSONL_", "TARGET_POSTGRES_")


def require(tool: Path, purpose: str) -> None:
    """Skip a test whose tool is missing; in CI, where setup installs it, fail instead."""
    if tool.exists():
        return
    message = f"{tool} is missing ({purpose}); run bash scripts/setup.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def meltano_environment(system_db: Path, **settings: str) -> dict[str, str]:
    """Return an environment for Meltano with no telemetry, no Hub and only these settings.

    The Hub URL points at a closed loopback port, so a plugin Meltano would look up there
    fails the command instead of reaching out. Each test gets its own system database.
    """
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(PLUGIN_PREFIXES)
    }
    return {
        **inherited,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_HUB_URL": "http://127.0.0.1:9",
        "MELTANO_DATABASE_URI": f"sqlite:///{system_db}",
        **settings,
    }


def run_meltano(
    *args: str, env: dict[str, str], project: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run one Meltano command in a project and return what it printed."""
    return subprocess.run(
        [str(MELTANO), "--log-level=warning", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def plugin(project_file: Path, plugin_type: str, name: str) -> dict:
    """Return one plugin's entry of a meltano.yml."""
    project = yaml.safe_load(project_file.read_text())
    return next(p for p in project["plugins"][plugin_type] if p["name"] == name)

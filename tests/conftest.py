"""Shared fixtures: the sample Quay server and ways to run the tap against it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sample_quay import TOKENS, SampleQuay
from tap_quay import client
from tap_quay.tap import TapQuay
from tests.singer_output import SingerOutput

TAP_EXECUTABLE = str(Path(sys.executable).with_name("tap-quay"))


@dataclass
class TapRun:
    """What one tap run printed and how it ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> SingerOutput:
        """Return the parsed Singer messages."""
        return SingerOutput.parse(self.stdout)


def run_tap_process(
    config: dict, tmp_path: Path, *args: str, catalog: dict | None = None
) -> TapRun:
    """Run the installed tap-quay executable, as Meltano would."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [TAP_EXECUTABLE, "--config", str(config_file), *args]
    if catalog is not None:
        catalog_file = tmp_path / "catalog.json"
        catalog_file.write_text(json.dumps(catalog))
        command += ["--catalog", str(catalog_file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    return TapRun(done.returncode, done.stdout, done.stderr)


def config_for(server: SampleQuay, token: str = "full", **settings: object) -> dict:
    """Return the tap's config for buynlarge on a sample server, with one of its tokens."""
    return {
        "base_url": server.url,
        "auth_token": TOKENS[token],
        "organizations": ["buynlarge"],
        **settings,
    }


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make exponential backoff start at 10 ms so retry tests take no time."""
    monkeypatch.setattr(client, "FIRST_RETRY_WAIT", 0.01)


@pytest.fixture
def sync_in_process(capsys: pytest.CaptureFixture[str]):
    """Return a function that syncs a tap in this process and returns its exit code and output."""

    def sync(config: dict) -> tuple[int, SingerOutput]:
        tap = TapQuay(config=config, parse_env_config=False)
        try:
            tap.sync_all()
            code = 0
        except SystemExit as stop:
            code = int(stop.code or 0)
        return code, SingerOutput.parse(capsys.readouterr().out)

    return sync

"""A real PostgreSQL server on 127.0.0.1 for one test module, via scripts/local_postgres.sh."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import tempfile
import typing as t
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.meltano_project import ROOT

SCRIPT = ROOT / "scripts" / "local_postgres.sh"
SCHEMA = "tap_quay"


def postgres_installed() -> bool:
    """Tell whether PostgreSQL's server programs are on this machine."""
    return bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def free_port() -> int:
    """Return a loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalPostgres:
    """A throwaway server: its folder lives under the system temp dir, outside pytest's.

    As root the server runs as the postgres user, who cannot enter pytest's private
    temp folders, hence a folder of its own.
    """

    folder: Path
    port: int

    @classmethod
    def start(cls) -> LocalPostgres:
        """Create a cluster in a new folder and start it on a free port."""
        server = cls(Path(tempfile.mkdtemp(prefix="tap-quay-pg-")), free_port())
        command = ["bash", str(SCRIPT), "start", str(server.folder), str(server.port)]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        return server

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        command = ["bash", str(SCRIPT), "stop", str(self.folder)]
        subprocess.run(command, check=False, capture_output=True, timeout=120)
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def settings(self) -> dict[str, str]:
        """Return target-postgres's settings for this server, as Meltano variables."""
        return {
            "TARGET_POSTGRES_HOST": "127.0.0.1",
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": "postgres",
            # The server trusts 127.0.0.1; target-postgres still wants a password.
            "TARGET_POSTGRES_PASSWORD": "unused",
            "TARGET_POSTGRES_DATABASE": "postgres",
        }

    def rows(self, sql: str, *params: t.Any) -> list[tuple[t.Any, ...]]:
        """Run one query and return its rows."""
        address = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(address) as connection:
            return connection.execute(sql, params).fetchall()

    def counts(self, table: str) -> tuple[int, int, int]:
        """Return a table's rows, rows marked deleted, and table versions of the others."""
        query = (
            "SELECT count(*), count(_sdc_deleted_at), "
            "count(DISTINCT _sdc_table_version) FILTER (WHERE _sdc_deleted_at IS NULL) "
            f'FROM {SCHEMA}."{table}"'
        )
        total, deleted, versions = self.rows(query)[0]
        return total, deleted, versions

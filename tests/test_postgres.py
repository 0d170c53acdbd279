"""The sample registry loaded into a real PostgreSQL by target-postgres, through Meltano.

Two runs, as a schedule would make them, with a tag deleted in Quay between the two: the
tables must hold one row per record sent, typed from the schemas, keyed on the streams'
keys, updated in place by the second run, and the deleted tag must come out deleted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import pytest

from sample_quay import TOKENS, SampleQuay
from sample_quay.model import StoredRepository
from tests.conftest import run_tap_process
from tests.meltano_project import MELTANO, STREAMS, meltano_environment, require, run_meltano
from tests.singer_output import SingerOutput
from tests.warehouse import SCHEMA, LocalPostgres, postgres_installed

DELETED_TAG = ("buynlarge", "multiarch", "v1.0")

#: Column types target-postgres gives each kind of schema property.
COLUMN_TYPES = {
    "date-time": "timestamp without time zone",
    "integer": "bigint",
    "boolean": "boolean",
    "string": "text",
}


@dataclass
class Loads:
    """What two Meltano runs into one warehouse did."""

    sent: SingerOutput
    first_counts: dict[str, tuple[int, int, int]]
    first_versions: set[int]


@pytest.fixture(scope="module")
def warehouse():
    if not postgres_installed():
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = LocalPostgres.start()
    yield server
    server.stop()


def delete_tag(server: SampleQuay, namespace: str, repository: str, name: str) -> None:
    """End a live tag in the sample registry, as deleting it in Quay does."""
    repo = server.registry.repository(f"{namespace}/{repository}")
    assert isinstance(repo, StoredRepository)
    ended = int(time.time()) - 1  # the registry's clock never runs behind time.time()
    repo.rows = [
        replace(row, end_ts=ended) if row.name == name and row.end_ts is None else row
        for row in repo.rows
    ]


@pytest.fixture(scope="module")
def loads(warehouse, tmp_path_factory):
    require(MELTANO, "Meltano")
    folder = tmp_path_factory.mktemp("postgres-loads")
    with SampleQuay() as server:
        env = meltano_environment(
            folder / "meltano.db",
            TAP_QUAY_BASE_URL=server.url,
            TAP_QUAY_AUTH_TOKEN=TOKENS["full"],
            **warehouse.settings,
        )
        sent = run_tap_process({"base_url": server.url, "auth_token": TOKENS["full"]}, folder)
        first = run_meltano("run", "tap-quay", "target-postgres", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        first_counts = {stream: warehouse.counts(stream) for stream in STREAMS}
        versions = warehouse.rows(f"SELECT _sdc_table_version FROM {SCHEMA}.tags")
        first_versions = {version for (version,) in versions}

        delete_tag(server, *DELETED_TAG)
        second = run_meltano("run", "tap-quay", "target-postgres", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
    return Loads(sent.output, first_counts, first_versions)


def test_every_stream_loads_into_its_own_table_with_one_row_per_record(loads):
    sent = {stream: (loads.sent.count(stream), 0, 1) for stream in STREAMS}
    assert loads.first_counts == sent


def test_columns_take_the_types_of_the_schemas_timestamps_included(loads, warehouse):
    columns = {
        (table, column): kind
        for table, column, kind in warehouse.rows(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s",
            SCHEMA,
        )
    }
    expected = {
        (stream, name): COLUMN_TYPES[kind]
        for stream, schema in loads.sent.schemas.items()
        for name, prop in schema["properties"].items()
        if (kind := property_kind(prop)) in COLUMN_TYPES
    }
    assert {key: columns.get(key) for key in expected} == expected
    assert columns[("tags", "start_ts")] == "timestamp without time zone"


def property_kind(prop: dict) -> str:
    """Return "date-time" for timestamps, else the property's one non-null JSON type."""
    if prop.get("format") == "date-time":
        return "date-time"
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else types
    non_null = [kind for kind in types if kind != "null"]
    return non_null[0] if len(non_null) == 1 else "mixed"


def test_each_table_is_keyed_on_its_streams_key_properties(loads, warehouse):
    keys: dict[str, list[str]] = {}
    for table, column in warehouse.rows(
        "SELECT c.table_name, k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = %s "
        "ORDER BY c.table_name, k.ordinal_position",
        SCHEMA,
    ):
        keys.setdefault(table, []).append(column)
    assert keys == {stream: loads.sent.key_properties[stream] for stream in STREAMS}


def test_a_second_run_updates_rows_in_place_without_duplicating_any(loads, warehouse):
    for stream in STREAMS:
        total, _, versions = warehouse.counts(stream)
        assert total == loads.first_counts[stream][0], stream
        assert versions == 1, f"{stream}: every live row carries the second run's version"
    live = f"SELECT _sdc_table_version FROM {SCHEMA}.tags WHERE _sdc_deleted_at IS NULL"
    (second_version,) = {version for (version,) in warehouse.rows(live)}
    assert second_version > max(loads.first_versions)


def test_a_tag_deleted_in_quay_is_marked_deleted_by_the_next_run(loads, warehouse):
    deleted = warehouse.rows(
        f"SELECT namespace, repository, name FROM {SCHEMA}.tags WHERE _sdc_deleted_at IS NOT NULL"
    )
    assert deleted == [DELETED_TAG]
    for stream in STREAMS:
        if stream != "tags":
            assert warehouse.counts(stream)[1] == 0, f"{stream} lost no row"

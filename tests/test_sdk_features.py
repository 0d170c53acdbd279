"""The SDK's features users rely on, once each against the sample server.

Stream and field selection by catalog, stream maps and schema flattening all come with
the SDK; these runs prove tap-quay's own overrides (one SCHEMA per stream, the records'
parent keys, ACTIVATE_VERSION at the end) leave them working.
"""

from __future__ import annotations

import json

import pytest

from sample_quay import TOKENS, SampleQuay
from tests.conftest import run_tap_process


@pytest.fixture(scope="module")
def server():
    with SampleQuay() as sample:
        yield sample


@pytest.fixture
def config(server) -> dict:
    return {"base_url": server.url, "auth_token": TOKENS["full"]}


def select(catalog: dict, stream: str, unselected_fields: tuple[str, ...] = ()) -> dict:
    """Mark one stream selected, every other stream unselected, and some fields unselected."""
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            breadcrumb = metadata["breadcrumb"]
            if breadcrumb == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == stream
            elif breadcrumb[-1] in unselected_fields and entry["tap_stream_id"] == stream:
                metadata["metadata"]["selected"] = False
    return catalog


def test_a_catalog_selects_one_child_stream_and_leaves_out_a_field(config, tmp_path):
    full = run_tap_process(config, tmp_path).output
    catalog = json.loads(run_tap_process(config, tmp_path, "--discover").stdout)

    run = run_tap_process(config, tmp_path, catalog=select(catalog, "tags", ("size",)))

    assert run.returncode == 0, run.stderr[-2000:]
    assert set(run.output.schemas) == {"tags"}
    assert "size" not in run.output.schemas["tags"]["properties"]
    assert run.output.keys("tags") == full.keys("tags")
    assert all("size" not in record for record in run.output.records["tags"])


def test_stream_maps_rename_filter_drop_and_derive(config, tmp_path):
    config["stream_maps"] = {
        "tags": {
            "__alias__": "image_tags",
            "__filter__": "repository == 'multiarch'",
            "size": None,
            "image": "namespace + '/' + repository + ':' + name",
        },
        "manifest_vulnerabilities": None,
    }

    run = run_tap_process(config, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "tags" not in run.output.schemas
    assert "manifest_vulnerabilities" not in run.output.schemas
    images = {record["image"] for record in run.output.records["image_tags"]}
    assert "buynlarge/multiarch:v1.0" in images
    assert all(image.startswith("buynlarge/multiarch:") for image in images)
    assert all("size" not in record for record in run.output.records["image_tags"])
    assert '"type":"ACTIVATE_VERSION","stream":"image_tags"' in run.stdout.replace(" ", "")


def test_flattening_turns_nested_objects_into_columns(config, tmp_path):
    config |= {"flattening_enabled": True, "flattening_max_depth": 1}

    run = run_tap_process(config, tmp_path)

    assert run.returncode == 0, run.stderr[-2000:]
    organizations = run.output.records["organizations"]
    assert all("avatar" not in record for record in organizations)
    assert all(record["avatar__name"] == record["name"] for record in organizations)
    assert "avatar__hash" in run.output.schemas["organizations"]["properties"]
    assert run.output.invalid_records("organizations") == []

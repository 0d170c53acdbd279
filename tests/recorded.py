"""Facts read straight from the recorded Quay responses, to check the tap's output against."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "sample_quay" / "data"


@cache
def body(name: str) -> dict:
    """Return the recorded body of one sample file."""
    return json.loads((DATA / f"{name}.json").read_text())["body"]


def names(items: list[dict]) -> set[str]:
    """Return the ``name`` of each item."""
    return {item["name"] for item in items}


def security_features(name: str) -> list[dict]:
    """Return the packages of a recorded security report."""
    return body(name)["data"]["Layer"]["Features"]

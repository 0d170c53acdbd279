"""Convert Quay's two timestamp formats to RFC 3339 UTC strings."""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


def from_rfc2822(value: str | None) -> str | None:
    """Convert an RFC 2822 date such as ``Fri, 31 May 2024 16:08:37 -0000``."""
    if not value:
        return None
    parsed = parsedate_to_datetime(value)
    # Quay writes UTC as "-0000", which Python parses into a naive datetime.
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return _rfc3339(parsed)


def from_epoch(value: int | float | None) -> str | None:
    """Convert integer epoch seconds, as in tag ``start_ts`` and repository ``last_modified``."""
    if value is None:
        return None
    return _rfc3339(datetime.fromtimestamp(value, tz=timezone.utc))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def convert_fields(
    record: dict[str, t.Any], rfc2822: tuple[str, ...] = (), epoch: tuple[str, ...] = ()
) -> dict[str, t.Any]:
    """Rewrite the named fields of ``record`` in place, leaving absent fields absent."""
    for field in rfc2822:
        if field in record:
            record[field] = from_rfc2822(record[field])
    for field in epoch:
        if field in record:
            record[field] = from_epoch(record[field])
    return record

"""ACTIVATE_VERSION: tell the target, once per stream, that this full sync replaces the last.

Every run reads the whole registry, so a tag, robot or member deleted in Quay is simply
absent from it. A target that handles ACTIVATE_VERSION (target-postgres, for one) then
deletes, or marks deleted, the rows an earlier run wrote and this one did not.

The SDK writes the message when each sync of a stream starts: for a child stream that is
once per parent record, and before the tap knows whether the stream can be read in full.
So the tap holds it back (see ``QuayStream._write_activate_version_message``) and writes it
here, after the last record, only for streams that were read completely.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from singer_sdk import Stream

    from tap_quay.client import QuayStream
    from tap_quay.problems import SyncProblems
    from tap_quay.tap import TapQuay

#: Answers that hide rows the token may not see: absent rows are not deleted rows.
HIDING_STATUSES = (401, 403)


def write_activate_versions(tap: TapQuay) -> None:
    """Write ACTIVATE_VERSION for every selected stream this run read completely."""
    if not tap.config.get("emit_activate_version_messages"):
        return
    if tap.config.get("batch_config"):
        # Records in batch files carry no version, so a target would take every row,
        # this run's included, for an older version's and drop it.
        tap.logger.info("No ACTIVATE_VERSION with batch_config: batch files carry no version.")
        return
    streams = [t.cast("QuayStream", stream) for stream in tap.streams.values()]
    version = run_version(streams, tap)
    selected = [stream for stream in streams if stream.selected]
    held_back = [stream.name for stream in selected if not read_completely(stream, tap)]
    for stream in selected:
        if stream.name not in held_back:
            stream.activate_table_version(version)
    if held_back:
        # INFO: the 403 or failure that caused it was already reported as such.
        tap.logger.info(
            "No ACTIVATE_VERSION for %s: not read completely, so rows deleted in Quay since "
            "the last complete run stay in the target until the next one.",
            ", ".join(held_back),
        )


def run_version(streams: list[QuayStream], tap: TapQuay) -> int:
    """Return the version the SDK stamped on this run's records."""
    stamped = [stream.table_version for stream in streams if stream.table_version is not None]
    # A run whose selected streams all came out without a sync stamps nothing; the SDK
    # would have used the tap's start second.
    return stamped[0] if stamped else tap.initialized_at // 1000


def read_completely(stream: Stream, tap: TapQuay) -> bool:
    """Tell whether neither the stream nor any stream above it missed any rows."""
    lineage = [stream, *ancestors(stream, tap)]
    return not any(missed_rows(member.name, tap.problems) for member in lineage)


def ancestors(stream: Stream, tap: TapQuay) -> list[Stream]:
    """Return the streams a stream is synced for: its parent, the parent's parent, ..."""
    by_type = {type(candidate): candidate for candidate in tap.streams.values()}
    found: list[Stream] = []
    parent_type = stream.parent_stream_type
    while parent_type is not None:
        parent = by_type[parent_type]
        found.append(parent)
        parent_type = parent.parent_stream_type
    return found


def missed_rows(stream_name: str, problems: SyncProblems) -> bool:
    """Tell whether a stream failed somewhere or was refused somewhere it may have rows."""
    if stream_name in problems.failed_streams:
        return True
    return any((stream_name, status) in problems.skipped for status in HIDING_STATUSES)

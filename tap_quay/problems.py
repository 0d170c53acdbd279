"""What a sync could not read: skipped resources (tolerated) and failures (fatal at the end)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass
class SyncProblems:
    """Collect skipped and failed resources so each is reported once, not per record."""

    logger: logging.Logger
    skipped: dict[tuple[str, int], int] = field(default_factory=dict)
    #: Why each (stream, status) was skipped, for the end-of-run summary.
    hints: dict[tuple[str, int], str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    failed_streams: set[str] = field(default_factory=set)

    def skip(self, stream: str, status: int, what: str, hint: str) -> None:
        """Note a resource the token may not see; warn the first time per stream and status."""
        key = (stream, status)
        self.skipped[key] = self.skipped.get(key, 0) + 1
        self.hints.setdefault(key, hint)
        if self.skipped[key] == 1:
            self.logger.warning(
                "%s: Quay answered %d for %s, so it comes out empty (%s). "
                "Further %d answers for this stream are counted, not logged.",
                stream,
                status,
                what,
                hint,
                status,
            )

    def fail(self, stream: str, what: str, reason: str) -> None:
        """Note a resource that kept failing after its retries; the run will exit non-zero."""
        self.failures.append(f"{stream}: {what}: {reason}")
        self.failed_streams.add(stream)
        self.logger.error("%s: could not read %s after retries: %s", stream, what, reason)

    def summary(self) -> str:
        """Describe every failure on one line each, for the final error."""
        lines = [f"{len(self.failures)} resource(s) could not be read; their records are missing:"]
        return "\n".join([*lines, *(f"  - {failure}" for failure in self.failures)])

"""Counts a person watching a long sync wants: periodic progress, and a summary at the end."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from tap_quay.problems import SyncProblems

#: Seconds between two progress lines.
PROGRESS_INTERVAL = 30.0


@dataclass
class SyncProgress:
    """Records, requests and retries per stream, logged every PROGRESS_INTERVAL seconds."""

    logger: logging.Logger
    started: float = field(default_factory=time.monotonic)
    records: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    _last_report: float = field(default_factory=time.monotonic)
    _reported: Counter[str] = field(default_factory=Counter)

    def record(self, stream: str) -> None:
        """Count one record, and log progress when the interval has passed."""
        self.records[stream] += 1
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_INTERVAL:
            self.report(now)

    def report(self, now: float) -> None:
        """Log one line per stream that wrote records since the last report."""
        seconds = max(now - self._last_report, 1e-9)
        for stream, count in self.records.items():
            new = count - self._reported[stream]
            if new:
                self.logger.info(
                    "progress: %s: %d records, %d requests, %.0f records/s",
                    stream,
                    count,
                    self.requests[stream],
                    new / seconds,
                )
        self._reported = Counter(self.records)
        self._last_report = now

    def summary(self, problems: SyncProblems) -> str:
        """Return the end-of-run table: per stream counts, skipped resources and time."""
        streams = sorted(set(self.records) | set(self.requests) | set(self.retries))
        lines = [f"{'stream':<26} {'records':>9} {'requests':>9} {'retries':>8}"]
        lines += [
            f"{name:<26} {self.records[name]:>9} {self.requests[name]:>9} {self.retries[name]:>8}"
            for name in streams
        ]
        lines.append(
            f"{'total':<26} {sum(self.records.values()):>9} {sum(self.requests.values()):>9} "
            f"{sum(self.retries.values()):>8}"
        )
        for (stream, status), count in sorted(problems.skipped.items()):
            hint = problems.hints[stream, status]
            lines.append(f"skipped: {stream}: {count} answered {status} ({hint})")
        lines.extend(f"failed: {failure}" for failure in problems.failures)
        lines.append(f"elapsed: {time.monotonic() - self.started:.1f} s")
        return "sync summary\n" + "\n".join(lines)

"""Measure tap-quay against the sample Quay server: requests, wall time, memory, STATE size.

Starts the sample server on 127.0.0.1 with a generated registry and a per-request latency,
syncs the same registry with max_concurrency 1 and at the default concurrency, and prints
for each run the requests made against the minimum the API allows, the wall time against
the bound ``minimum_requests x latency / concurrency``, records per second, peak RSS and
the largest STATE line. With --rate-limit N the server answers 429 above N requests per
second, and the report adds accepted requests per second and the share rejected.

    .venv/bin/python scripts/benchmark.py                      # 20 ms latency, small registry
    .venv/bin/python scripts/benchmark.py --scale large --latency-ms 0 --concurrency 5
    .venv/bin/python scripts/benchmark.py --rate-limit 20 --concurrency 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from sample_quay import TOKENS, SampleQuay, ScaleSettings
from sample_quay.minimum import minimum_requests

TAP = str(Path(sys.executable).with_name("tap-quay"))
STREAM = re.compile(rb'"stream":"([a-z_]+)"')
# 1 org x 5 repos x 120 live tags: tag paging, shared digests, manifest lists; enough for a
# rate-limited run to settle.
TINY = ScaleSettings(
    orgs=1,
    repos_per_org=5,
    active_tags=120,
    dead_tags=5,
    manifest_lists=2,
    packages=10,
    vulnerabilities=3,
)
SCALES = {
    "tiny": TINY,
    "small": replace(TINY, orgs=2, repos_per_org=10),
    # 100,000 live tags and about a million package rows.
    "large": ScaleSettings(
        orgs=2,
        repos_per_org=50,
        active_tags=1000,
        dead_tags=0,
        shared_digest_share=0.25,
        manifest_lists=2,
        packages=16,
        vulnerabilities=2,
    ),
}


@dataclass
class Run:
    """What one sync cost."""

    concurrency: int
    returncode: int
    seconds: float
    peak_rss_mb: float
    records: Counter[str]
    largest_state: int
    requests: int
    rejected: int
    peak_in_flight: int


def sync(server: SampleQuay, organizations: list[str], concurrency: int) -> Run:
    """Run the tap once as a separate process and measure it."""
    config = {
        "base_url": server.url,
        "auth_token": TOKENS["full"],
        "organizations": organizations,
        "max_concurrency": concurrency,
    }
    with tempfile.TemporaryDirectory() as work:
        config_file = Path(work, "config.json")
        config_file.write_text(json.dumps(config))
        server.clear_requests()
        started = time.monotonic()
        with open(Path(work, "out"), "wb") as out, open(Path(work, "err"), "wb") as err:
            process = subprocess.Popen([TAP, "--config", str(config_file)], stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        records, largest_state = read_output(Path(work, "out"))
        if status:
            sys.stderr.write(Path(work, "err").read_text()[-3000:])
    logged = server.requests
    return Run(
        concurrency,
        os.waitstatus_to_exitcode(status),
        seconds,
        usage.ru_maxrss / 1024,
        records,
        largest_state,
        len(logged),
        sum(1 for r in logged if r.status == 429),
        server.max_in_flight,
    )


def read_output(path: Path) -> tuple[Counter[str], int]:
    """Count RECORD lines per stream and measure the largest STATE line, streaming the file."""
    records: Counter[str] = Counter()
    largest_state = 0
    with path.open("rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                records[STREAM.search(line).group(1).decode()] += 1  # type: ignore[union-attr]
            elif line.startswith(b'{"type":"STATE"'):
                largest_state = max(largest_state, len(line))
    return records, largest_state


def report(run: Run, minimum: int, latency: float, rate_limit: float | None) -> None:
    """Print one run's figures."""
    bound = minimum * latency / run.concurrency
    print(f"\nmax_concurrency={run.concurrency}  exit={run.returncode}")
    accepted = run.requests - run.rejected
    print(
        f"  requests      {accepted} accepted / minimum {minimum}"
        f"  ({accepted / minimum:.3f}x){'' if accepted == minimum else '  <-- not minimal'}"
    )
    if bound:
        print(
            f"  wall time     {run.seconds:.2f} s / bound {bound:.2f} s"
            f"  ({run.seconds / bound:.2f}x)"
        )
    else:
        print(f"  wall time     {run.seconds:.2f} s")
    total = sum(run.records.values())
    print(
        f"  records       {total}  ({total / run.seconds:,.0f} per second); tags"
        f" {run.records['tags']}, package rows {run.records['manifest_packages']}"
    )
    print(f"  peak RSS      {run.peak_rss_mb:.0f} MB")
    print(f"  largest STATE {run.largest_state} bytes")
    print(f"  most in flight at the server: {run.peak_in_flight}")
    if rate_limit:
        print(
            f"  accepted rate {accepted / run.seconds:.1f} req/s against a limit of "
            f"{rate_limit:g} ({accepted / run.seconds / rate_limit:.0%});"
            f" rejected {run.rejected} ({run.rejected / max(1, run.requests):.1%})"
        )


def main() -> None:
    """Parse the options, start the server, run the syncs and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--rate-limit", type=float, help="server-side requests per second")
    options = parser.parse_args()

    latency = options.latency_ms / 1000
    scale = SCALES[options.scale]
    organizations = [f"gen-org-{index:03d}" for index in range(scale.orgs)]
    with SampleQuay(scale=scale, latency=latency, keep_alive=True) as server:
        server.limit_rate(options.rate_limit)
        minimum = minimum_requests(server.registry, organizations, time.time())
        print(f"registry: {options.scale} ({scale}), latency {options.latency_ms:g} ms")
        for concurrency in options.concurrency:
            report(sync(server, organizations, concurrency), minimum, latency, options.rate_limit)


if __name__ == "__main__":
    main()

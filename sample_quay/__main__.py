"""Run the sample Quay server from the command line until interrupted."""

from __future__ import annotations

import argparse
import sys
import threading

from .auth import TOKENS
from .faults import FAULT_KINDS, Fault
from .generated import ScaleSettings
from .server import SampleQuay, TlsFiles, is_loopback

_SCALE_OPTIONS = {
    "orgs": int,
    "repos_per_org": int,
    "active_tags": int,
    "dead_tags": int,
    "shared_digest_share": float,
    "manifest_lists": int,
    "packages": int,
    "vulnerabilities": int,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; refuse hosts that are not loopback addresses."""
    parser = argparse.ArgumentParser(prog="python -m sample_quay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--scanner", choices=("on", "off", "down"), default="on")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay per answer")
    parser.add_argument(
        "--scale", action="store_true", help="add generated organizations with the default sizes"
    )
    defaults = ScaleSettings()
    for name, kind in _SCALE_OPTIONS.items():
        option = "--scale-" + name.replace("_", "-")
        parser.add_argument(
            option,
            type=kind,
            dest=name,
            help=f"generated data: {name} (default {getattr(defaults, name)})",
        )
    add_fault_options(parser)
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    try:
        args.faults = [Fault.parse(spec) for spec in args.fault]
    except (ValueError, TypeError) as error:
        parser.error(f"--fault: {error}")
    return args


def add_fault_options(parser: argparse.ArgumentParser) -> None:
    """Add the fault plan, rate limit and TLS options."""
    kinds = "; ".join(f"{kind}: {effect}" for kind, effect in FAULT_KINDS.items())
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="'KIND [PATH_REGEX] [name=value ...]'",
        help="inject a fault (repeatable); options times=N|always, nth=N, status=N, "
        f"body=json|html, retry_after=seconds|date|fraction|none, wait=S. Kinds: {kinds}",
    )
    parser.add_argument("--rate-limit", type=float, help="requests per second before 429")
    parser.add_argument("--rate-burst", type=int, help="burst the rate limit lets through")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")


def scale_settings(args: argparse.Namespace) -> ScaleSettings | None:
    """Return generated-data settings if --scale or any --scale-* option was given."""
    values = {name: getattr(args, name) for name in _SCALE_OPTIONS}
    given = {name: value for name, value in values.items() if value is not None}
    if not (args.scale or given):
        return None
    return ScaleSettings(**given)


def main(argv: list[str] | None = None) -> None:
    """Start the server, print its URL (first line) and the tokens, serve until ^C."""
    args = parse_args(argv)
    tls = TlsFiles(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = SampleQuay(
        scanner=args.scanner,
        latency=args.latency_ms / 1000,
        scale=scale_settings(args),
        host=args.host,
        port=args.port,
        faults=args.faults,
        tls=tls,
    )
    server.limit_rate(args.rate_limit, args.rate_burst)
    try:
        server.start()
    except OSError as error:
        sys.exit(f"sample_quay: cannot listen on {args.host}:{args.port}: {error.strerror}")
    try:
        print(f"Sample Quay server at {server.url}", flush=True)
        for label, token in TOKENS.items():
            print(f"  token {label}: {token}", flush=True)
        if any(fault.kind == "redirect" for fault in args.faults):
            print(f"  redirects go to {server.elsewhere.url}", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print(f"stopped; {summary(server)}", file=sys.stderr)
    finally:
        server.stop()


def summary(server: SampleQuay) -> str:
    """Describe what the server answered: requests, faults played, rate-limit counts."""
    accepted, rejected = server.rate_counts
    faults = ", ".join(f"{kind} {count}" for kind, count in server.faults_injected.items())
    return (
        f"{len(server.requests)} requests; faults: {faults or 'none'}; "
        f"rate limit: {accepted} accepted, {rejected} rejected"
    )


if __name__ == "__main__":
    main()

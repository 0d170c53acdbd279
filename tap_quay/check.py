"""``tap-quay-check``: what the configured token can read, scope by scope, and what to fix.

The SDK's own ``tap-quay --test`` syncs one record per stream and is left as it is; this
command makes a handful of GET requests, prints a short table and exits 0 only when the
token holds repo:read and org:admin on every organization.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as t
from dataclasses import dataclass
from pathlib import Path

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_quay.client import QuayStream
from tap_quay.errors import InvalidTokenError, QuayError, ResourceUnavailable
from tap_quay.streams.images import SECURITY_PATH, advertises_security
from tap_quay.tap import TapQuay, check_base_url

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Record

OK, FIX, NOT_TRIED = "ok", "FIX", "-"
#: The answer of one probe: an HTTP status (0 when none came) and the JSON body.
Answer = tuple[int, dict[str, t.Any]]
#: The scope rows whose failure makes the check exit non-zero.
REQUIRED = ("org:admin", "repo:read")


@dataclass(frozen=True)
class Finding:
    """One row of the table: what was checked, the result and what it means."""

    check: str
    result: str
    detail: str


class AccessCheck:
    """Probe the registry with the tap's own HTTP policy and collect findings."""

    def __init__(self, tap: TapQuay) -> None:
        """Use the tap's streams, so requests, retries and TLS are those of a sync."""
        self.tap = tap
        self.token = bool(tap.config.get("auth_token"))
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        """Run every check in order and return the findings."""
        try:
            check_base_url(self.tap.config)
        except QuayError as error:
            return [Finding("base_url", FIX, str(error))]
        profile = self.check_user()
        organizations = list(self.tap.config.get("organizations") or [])
        if not organizations and profile:
            organizations = [org["name"] for org in profile.get("organizations", [])]
        if not organizations:
            self.add("organizations", FIX, "none listed and none discovered: set organizations")
            return self.findings
        valid = profile is not None
        for organization in organizations:
            valid = self.check_org_admin(organization) or valid
        if self.token:
            verdict = "Quay knows it" if valid else "Quay treats it as anonymous: replace it"
            self.findings.insert(0, Finding("token", OK if valid else FIX, verdict))
        if self.token and not valid:
            return self.findings
        image = self.check_repo_read(organizations)
        self.check_scanner(image)
        return self.findings

    def add(self, check: str, result: str, detail: str) -> None:
        """Record one finding."""
        self.findings.append(Finding(check, result, detail))

    def get(self, stream_name: str, path: str) -> Answer:
        """GET a path through a stream, with its retries; map the outcome to a status."""
        stream = t.cast("QuayStream", self.tap.streams[stream_name])
        url = stream.build_url(path, {})
        prepared = stream.build_prepared_request(method="GET", url=url, headers=stream.http_headers)
        send = stream.request_decorator(stream._request)
        try:
            return 200, stream.response_json(send(prepared, {}))
        except ResourceUnavailable as gap:
            return gap.status, {}
        except InvalidTokenError:
            return 401, {}
        except RetriableAPIError as error:
            status = error.response.status_code if error.response is not None else 0
            return status, {}
        except requests.RequestException:
            return 0, {}

    def check_user(self) -> Record | None:
        """Read /user/: it proves the token and the user:read scope at once."""
        if not self.token:
            self.add("token", FIX, "no auth_token: only public repositories can be read")
            return None
        status, body = self.get("user", "/user/")
        if status == 200:
            self.add("user:read", OK, f"signed in as {body.get('username')}")
            return body
        needed = not self.tap.config.get("organizations")
        hint = "not granted, or the token is unknown; needed only when organizations is empty"
        self.add("user:read", FIX if needed or status != 401 else NOT_TRIED, hint)
        return None

    def check_org_admin(self, organization: str) -> bool:
        """Read one organization's members; return whether the token is known to Quay."""
        status, _ = self.get("organization_members", f"/organization/{organization}/members")
        details = {
            200: (OK, "members, robot accounts and teams are readable"),
            401: (FIX, "Quay treats the token as anonymous" if self.token else "needs a token"),
            403: (FIX, "the token lacks org:admin or its user is not an owner here"),
        }
        result, detail = details.get(status, (FIX, f"Quay answered {status or 'nothing'}"))
        self.add(f"org:admin on {organization}", result, detail)
        return status in (200, 403)

    def check_repo_read(self, organizations: list[str]) -> tuple[str, str] | None:
        """Read the tags of a private repository; return an image to try the scanner on."""
        first_image = None
        for organization in organizations:
            query = f"/repository?namespace={organization}&public=true"
            for repository in self.get("repositories", query)[1].get("repositories", []):
                path = f"{repository['namespace']}/{repository['name']}"
                status, body = self.get(
                    "tags", f"/repository/{path}/tag/?limit=1&onlyActiveTags=true"
                )
                tags = body.get("tags") or []
                if tags and first_image is None:
                    first_image = (path, str(tags[0]["manifest_digest"]))
                if not repository.get("is_public"):
                    result = OK if status == 200 else FIX
                    detail = "the token lacks repo:read" if status == 403 else f"read {path}"
                    self.add("repo:read", result, detail)
                    return (path, str(tags[0]["manifest_digest"])) if tags else first_image
        self.add("repo:read", NOT_TRIED, "no private repository listed; nothing needs it yet")
        return first_image

    def check_scanner(self, image: tuple[str, str] | None) -> None:
        """Ask for one security report, if the registry advertises the scanner."""
        status, discovery = self.get("manifests", "/discovery")
        if status == 200 and not advertises_security(discovery):
            self.add("security scanner", NOT_TRIED, "off on this registry: no package rows")
            return
        if image is None:
            self.add("security scanner", NOT_TRIED, "no tagged image to ask about")
            return
        path, digest = image
        namespace, repository = path.split("/", 1)
        security = SECURITY_PATH.format(namespace=namespace, repository=repository, digest=digest)
        status, report = self.get("manifests", security)
        if status == 200:
            self.add("security scanner", OK, f"answered for {path} ({report.get('status')})")
        else:
            self.add("security scanner", FIX, f"Quay answered {status or 'nothing'} for {path}")


def table(findings: list[Finding]) -> str:
    """Format the findings as an aligned three-column table."""
    rows = [Finding("check", "result", "detail"), *findings]
    width = max(len(row.check) for row in rows)
    return "\n".join(f"{row.check:<{width}}  {row.result:<6}  {row.detail}" for row in rows)


def passed(findings: list[Finding]) -> bool:
    """Tell whether every required scope holds (a repo:read nothing needs counts)."""
    required = [f for f in findings if f.check.startswith(REQUIRED)]
    org_rows = [f for f in required if f.check.startswith("org:admin")]
    return bool(org_rows) and all(f.result in (OK, NOT_TRIED) for f in required)


def main(argv: list[str] | None = None) -> None:
    """Check the token of a tap-quay config file; exit 0 only when a full sync can work."""
    parser = argparse.ArgumentParser(prog="tap-quay-check", description=__doc__)
    parser.add_argument(
        "--config",
        required=True,
        help="the tap's config.json, or ENV to read the TAP_QUAY_* environment variables",
    )
    args = parser.parse_args(argv)
    config: dict[str, t.Any] = {}
    if args.config != "ENV":
        try:
            config = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as error:
            parser.error(f"cannot read the config file {args.config}: {error}")
    tap = TapQuay(config=config, parse_env_config=True)
    try:
        findings = AccessCheck(tap).run()
    except QuayError as error:
        findings = [Finding("registry", FIX, str(error))]
    print(table(findings))
    sys.exit(0 if passed(findings) else 1)

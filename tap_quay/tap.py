"""The tap: settings, stream list, the token check and the end-of-run verdict."""

from __future__ import annotations

import sys

import requests
from requests.adapters import HTTPAdapter
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from typing_extensions import override

from tap_quay.client import USER_AGENT
from tap_quay.errors import InvalidTokenError, QuayError
from tap_quay.problems import SyncProblems
from tap_quay.streams import STREAM_TYPES
from tap_quay.streams.access import OrganizationMembersStream, UserStream


class TapQuay(Tap):
    """Singer tap for a Quay container registry (quay.io or Red Hat Quay)."""

    name = "tap-quay"

    config_jsonschema = th.PropertiesList(
        th.Property(
            "base_url",
            th.StringType,
            default="https://quay.io",
            description="Registry root, e.g. https://quay.example.com (no /api/v1).",
        ),
        th.Property(
            "auth_token",
            th.StringType,
            secret=True,
            description="OAuth access token with repo:read and org:admin (user:read to "
            "discover organizations). Without it only public content is read.",
        ),
        th.Property(
            "organizations",
            th.ArrayType(th.StringType),
            default=[],
            description="Organizations to sync; empty means every organization of the "
            "token's user, read from /api/v1/user/.",
        ),
        th.Property(
            "collect_vulnerabilities",
            th.BooleanType,
            default=True,
            description="Read each image's security report; false makes no security "
            "requests and leaves manifest_packages and manifest_vulnerabilities empty.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            default=USER_AGENT,
            description="User-Agent sent on every request.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=60,
            description="Seconds to wait for each response.",
        ),
    ).to_dict()

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Create the tap with one HTTP session and one problem log shared by all streams."""
        self.session = requests.Session()
        self.session.mount("https://", HTTPAdapter(pool_maxsize=16))
        self.session.mount("http://", HTTPAdapter(pool_maxsize=16))
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.problems = SyncProblems(self.logger)

    @override
    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    def organization_names(self) -> list[str]:
        """Return the configured organizations, or the token user's when none are set."""
        configured = list(self.config.get("organizations") or [])
        if configured:
            return configured
        profile = self.user_stream.profile() or {}
        return [organization["name"] for organization in profile.get("organizations", [])]

    @property
    def user_stream(self) -> UserStream:
        """Return the user stream, which holds the token's profile."""
        return self.streams["user"]  # type: ignore[return-value]

    def check_token(self) -> None:
        """Stop before syncing if Quay would treat the token as anonymous.

        Quay answers an unknown token as if no token were sent: 200 with public data on
        most endpoints. /user/ tells a good token from a bad one unless the token lacks
        user:read; then a members list decides (401 bad token, 403 or 200 good token).
        """
        if not self.config.get("auth_token") or self.user_stream.profile() is not None:
            return
        organizations = self.config.get("organizations") or []
        if not organizations:
            raise InvalidTokenError(
                "Quay answered 401 to /api/v1/user/: the token is invalid or lacks the "
                "user:read scope needed to discover organizations. Fix the token, or list "
                "the organizations to sync in the organizations setting."
            )
        members = self.streams["organization_members"]
        assert isinstance(members, OrganizationMembersStream)
        members.confirm_token(organizations[0])

    # The SDK marks sync_all final, but only here can the token be checked before every
    # stream and the run judged after all of them.
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        try:
            self.check_token()
            super().sync_all()
        except QuayError as error:
            self.logger.error("%s", error)
            sys.exit(1)
        if self.problems.failures:
            self.logger.error("%s", self.problems.summary())
            sys.exit(1)


if __name__ == "__main__":
    TapQuay.cli()

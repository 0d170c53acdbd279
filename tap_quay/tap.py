"""The tap: settings, stream list, the token check and the end-of-run verdict."""

from __future__ import annotations

import ipaddress
import sys
import typing as t
from functools import cached_property
from urllib.parse import urlparse

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.helpers._classproperty import classproperty
from typing_extensions import override

from tap_quay.client import MAX_RETRY_WAIT, USER_AGENT
from tap_quay.environment import with_numbers
from tap_quay.errors import InvalidTokenError, QuayError
from tap_quay.output import RecordBufferingWriter
from tap_quay.problems import SyncProblems
from tap_quay.progress import SyncProgress
from tap_quay.streams import ACCESS_STREAMS, STREAM_TYPES
from tap_quay.streams.access import OrganizationMembersStream, UserStream
from tap_quay.transport import Transport
from tap_quay.versions import write_activate_versions


class TapQuay(Tap):
    """Singer tap for a Quay container registry (quay.io or Red Hat Quay)."""

    name = "tap-quay"
    message_writer_class = RecordBufferingWriter

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
            "emit_activate_version_messages",
            th.BooleanType,
            default=True,
            description="After each stream read in full, send ACTIVATE_VERSION so a target "
            "that supports it (target-postgres) drops or marks deleted the rows this full "
            "sync no longer has: deleted tags, robots, members.",
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
        th.Property(
            "max_retry_wait",
            th.NumberType,
            default=MAX_RETRY_WAIT,
            description="Longest wait before a retry, in seconds; a Retry-After asking for "
            "more fails that resource instead of waiting.",
        ),
        th.Property(
            "ca_bundle",
            th.StringType,
            description="PEM file of the certificate authorities to trust, for a registry "
            "whose certificate a private CA signed. Certificates are always verified.",
        ),
        th.Property(
            "allow_insecure_http",
            th.BooleanType,
            default=False,
            description="Allow an http:// base_url for a host other than this machine; the "
            "token then crosses the network unencrypted.",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType,
            default=5,
            description="Most requests in flight at once across the whole tap; 1 syncs "
            "strictly one request at a time.",
            minimum=1,
        ),
        th.Property(
            "max_requests_per_second",
            th.NumberType,
            description="Hard cap on the request rate; unset means only the server's 429 "
            "answers slow the tap down.",
            exclusive_minimum=0,
        ),
    ).to_dict()

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Create the tap with one problem log shared by all streams."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.problems = SyncProblems(self.logger)
        self.progress = SyncProgress(self.logger)

    @classproperty
    @override
    def _env_var_config(cls) -> dict[str, t.Any]:  # noqa: N805 - a class property
        """Read TAP_QUAY_* settings for `--config ENV`, numbers included."""
        config = super()._env_var_config
        return with_numbers(config, cls.config_jsonschema)

    @cached_property
    def transport(self) -> Transport:
        """Return the one HTTP transport every stream sends through."""
        rate = self.config.get("max_requests_per_second")
        return Transport(
            base_url=self.config["base_url"],
            max_concurrency=int(self.config.get("max_concurrency") or 1),
            max_rate=float(rate) if rate else None,
            timeout=float(self.config["request_timeout"]),
            ca_bundle=self.config.get("ca_bundle"),
            max_retry_wait=float(self.config.get("max_retry_wait", MAX_RETRY_WAIT)),
        )

    @override
    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]

    def organization_names(self) -> list[str]:
        """Return the configured organizations, or the token user's when none are set."""
        names = list(self.config.get("organizations") or [])
        if not names:
            profile = self.user_stream.profile() or {}
            names = [org.get("name") for org in profile.get("organizations") or []]
        # Each once, in order: an organization listed twice would be synced twice.
        return list(dict.fromkeys(name for name in names if isinstance(name, str) and name))

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
        if not organizations and "user" in self.problems.failed_streams:
            raise QuayError(f"Could not discover the organizations: {self.problems.failures[-1]}")
        if not organizations:
            raise InvalidTokenError(
                "Quay answered 401 to /api/v1/user/: the token is invalid or lacks the "
                "user:read scope needed to discover organizations. Fix the token, or list "
                "the organizations to sync in the organizations setting."
            )
        members = self.streams["organization_members"]
        assert isinstance(members, OrganizationMembersStream)
        members.confirm_token(organizations[0])

    def check_anonymous(self) -> None:
        """Without a token, say once what stays empty, and stop if nothing could be read."""
        if self.config.get("auth_token"):
            return
        if not self.config.get("organizations"):
            raise QuayError(
                "Without auth_token the organizations cannot be discovered: list the "
                "organizations whose public repositories to read in the organizations setting."
            )
        self.logger.warning(
            "No auth_token: reading only public repositories (tags, manifests, security "
            "reports) of the listed organizations; %s stay empty.",
            ", ".join(ACCESS_STREAMS),
        )

    # The SDK marks sync_all final, but only here can the token be checked before every
    # stream and the run judged after all of them.
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        try:
            check_base_url(self.config)
            self.check_anonymous()
            self.check_token()
            super().sync_all()
        except QuayError as error:
            self.logger.error("%s", error)
            sys.exit(1)
        write_activate_versions(self)
        self.logger.info("%s", self.progress.summary(self.problems))
        if self.problems.failures:
            self.logger.error("%s", self.problems.summary())
            sys.exit(1)


def check_base_url(config: t.Mapping[str, t.Any]) -> None:
    """Refuse a base_url that would send the token in clear text over the network."""
    url = urlparse(config["base_url"])
    if url.scheme == "https" or (url.scheme == "http" and is_loopback(url.hostname or "")):
        return
    if url.scheme == "http" and config.get("allow_insecure_http"):
        return
    raise QuayError(
        f"base_url must start with https:// (got {url.scheme}://{url.hostname}); plain HTTP "
        "would carry the token unencrypted. Set allow_insecure_http to true only for a "
        "registry on a network you trust."
    )


def is_loopback(host: str) -> bool:
    """Tell whether a host name or address stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    TapQuay.cli()

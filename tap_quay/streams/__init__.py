"""The eleven streams, grouped by what they describe."""

from tap_quay.streams.access import (
    OrganizationMembersStream,
    OrganizationsStream,
    RobotAccountsStream,
    TeamMembersStream,
    TeamsStream,
    UserStream,
)
from tap_quay.streams.images import ManifestsStream, RepositoriesStream, TagsStream
from tap_quay.streams.security import ManifestPackagesStream, ManifestVulnerabilitiesStream

#: In sync order: a parent always comes before its children.
STREAM_TYPES = (
    UserStream,
    OrganizationsStream,
    OrganizationMembersStream,
    RobotAccountsStream,
    TeamsStream,
    TeamMembersStream,
    RepositoriesStream,
    TagsStream,
    ManifestsStream,
    ManifestPackagesStream,
    ManifestVulnerabilitiesStream,
)

#: The streams that need a token: without one they stay empty, with one warning in all.
ACCESS_STREAMS = tuple(stream_type.name for stream_type in STREAM_TYPES if stream_type.needs_token)

__all__ = ["ACCESS_STREAMS", "STREAM_TYPES"]

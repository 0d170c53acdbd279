"""Who has access: the user, organizations, their members, robot accounts and teams."""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_quay import schemas
from tap_quay.client import SKIP_HINTS, QuayStream
from tap_quay.errors import InvalidTokenError, ResourceUnavailable
from tap_quay.timestamps import convert_fields

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

    from tap_quay.transport import Order


class UserStream(QuayStream):
    """The token's own user, read once; its organization list drives discovery."""

    name = "user"
    path = "/user/"
    primary_keys = ("username",)
    schema = schemas.USER
    resource = "the token's user profile"
    skip_hints: t.ClassVar[dict[int, str]] = {
        **SKIP_HINTS,
        401: "the token lacks the user:read scope, or Quay does not know it",
    }
    needs_token = True

    _profile: Record | None = None
    _profile_read = False

    @override
    def validate_response(self, response: requests.Response) -> None:
        # /user/ answers 401 both to a bad token and to a good one without user:read;
        # the tap decides which it was, so here it only means "not readable".
        try:
            super().validate_response(response)
        except InvalidTokenError:
            raise ResourceUnavailable(401, "/api/v1/user/") from None

    def profile(self) -> Record | None:
        """Return the user profile, requesting it the first time only."""
        if not self._profile_read:
            self._profile = next(iter(super().get_records(None)), None)
            self._profile_read = True
        return self._profile

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        if (profile := self.profile()) is not None:
            yield profile


class OrganizationsStream(QuayStream):
    """Each organization's detail; its ``teams`` object feeds the teams stream."""

    name = "organizations"
    path = "/organization/{organization}"
    primary_keys = ("name",)
    schema = schemas.ORGANIZATION
    resource = "organization"

    _teams: tuple[str, list[Record] | None] = ("", None)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        organizations = self.quay.organization_names()
        for index, organization in enumerate(organizations):
            self.prefetch_organization((index,), {"organization": organization})
        for index, organization in enumerate(organizations):
            self.position = (index,)
            yield from super().get_records({"organization": organization})

    def prefetch_organization(self, position: Order, context: Context) -> None:
        """Fetch ahead the organization's detail and the first answer of each child."""
        self.prefetch((*position, 0), context)
        for rank, child in enumerate(self.child_streams, start=1):
            if isinstance(child, QuayStream) and child.wanted and child.path:
                child.prefetch((*position, rank, 0), context)

    @override
    def transform(self, row: Record) -> Record:
        teams = row.pop("teams", None)
        self._teams = (row["name"], None if teams is None else list(teams.values()))
        self.prefetch_team_members(row["name"], self._teams[1] or [])
        return row

    def prefetch_team_members(self, organization: str, teams: list[Record]) -> None:
        """Fetch ahead the member lists of the teams the caller may read."""
        team_members = self.quay.streams["team_members"]
        assert isinstance(team_members, QuayStream)
        if not team_members.wanted:
            return
        rank = [type(child) for child in self.child_streams].index(TeamsStream) + 1
        for index, team in enumerate(teams):
            if team.get("can_view", True):
                context = {"organization": organization, "team": team["name"]}
                team_members.prefetch((*self.position, rank, index), context)

    def teams_of(self, organization: str) -> list[Record] | None:
        """Return the teams of the organization just read, or None if Quay hid them."""
        name, teams = self._teams
        return teams if name == organization else None

    @override
    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return {"organization": record["name"]}


class OrganizationMembersStream(QuayStream):
    """Users on at least one team of an organization (robots are not listed here)."""

    name = "organization_members"
    parent_stream_type = OrganizationsStream
    path = "/organization/{organization}/members"
    primary_keys = ("organization", "name")
    schema = schemas.ORGANIZATION_MEMBER
    records_key = "members"
    parent_keys = ("organization",)
    resource = "members of organization"
    needs_token = True

    _early: tuple[str, list[Record]] | None = None

    def confirm_token(self, organization: str) -> None:
        """Read one organization's members early: a 401 here proves the token is bad.

        The answer is kept for the regular sync so the request is not made twice.
        """
        rows = list(super().get_records({"organization": organization}))
        self._early = (organization, rows)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        organization = (context or {}).get("organization")
        if self._early and self._early[0] == organization:
            rows, self._early = self._early[1], None
            yield from rows
            return
        yield from super().get_records(context)


class RobotAccountsStream(QuayStream):
    """Robot accounts of an organization: names and grants, never their tokens."""

    name = "robot_accounts"
    parent_stream_type = OrganizationsStream
    path = "/organization/{organization}/robots"
    primary_keys = ("name",)
    schema = schemas.ROBOT_ACCOUNT
    records_key = "robots"
    parent_keys = ("organization",)
    resource = "robot accounts of organization"
    needs_token = True

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> Record:
        # Quay returns every robot's secret to an org admin unless token=false is sent
        # (literally "false": "no" still means true). No limit: it picks a moving subset.
        return {"token": "false", "permissions": "true"}

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        row.pop("token", None)  # in case a server ignores token=false
        organization = (context or {}).get("organization", "")
        # Quay matches robots with SQL LIKE, where "_" in an org name is a wildcard.
        if not row.get("name", "").startswith(f"{organization}+"):
            return None
        return super().post_process(row, context)

    @override
    def transform(self, row: Record) -> Record:
        return convert_fields(row, rfc2822=("created", "last_accessed"))


class TeamsStream(QuayStream):
    """Teams of an organization, taken from the organization detail already read."""

    name = "teams"
    parent_stream_type = OrganizationsStream
    primary_keys = ("organization", "name")
    schema = schemas.TEAM
    parent_keys = ("organization",)
    needs_token = True

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        if self.anonymous_skip:
            return
        organization = (context or {})["organization"]
        organizations = t.cast("OrganizationsStream", self.quay.streams["organizations"])
        teams = organizations.teams_of(organization)
        if teams is None:
            self.quay.problems.skip(
                self.name,
                403,
                f"teams of organization {organization}",
                "the organization detail hides teams unless the token has org:admin "
                "and the user is a member",
            )
            return
        yield from teams

    @override
    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> t.Iterable[Context | None]:
        # Quay marks teams whose members the caller may not read; asking would be a 403.
        if record.get("can_view", True):
            yield {"organization": record["organization"], "team": record["name"]}


class TeamMembersStream(QuayStream):
    """Members of each team, robots included (``is_robot``); pending invites are not asked."""

    name = "team_members"
    parent_stream_type = TeamsStream
    path = "/organization/{organization}/team/{team}/members"
    primary_keys = ("organization", "team", "name")
    schema = schemas.TEAM_MEMBER
    records_key = "members"
    parent_keys = ("organization", "team")
    resource = "members of team"
    needs_token = True

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        seen: set[str] = set()
        for row in super().get_records(context):
            name = row.get("name")
            # Invitations by e-mail have no name; a repeated name is the same member.
            if name and name not in seen:
                seen.add(name)
                yield row

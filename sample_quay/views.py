"""Render model objects into the JSON shapes of Quay's API, keys in Quay's order."""

from __future__ import annotations

from email.utils import formatdate

from .auth import Identity, cap_team_role
from .model import Json, Organization, Registry, Repository, Robot, TagRow, Team
from .permissions import can_view_team, is_org_admin, org_role, repo_role, team_role


def format_date(epoch_seconds: float) -> str:
    """Format a timestamp the way Quay does, e.g. 'Fri, 04 Dec 2026 15:13:20 -0000'."""
    return formatdate(epoch_seconds)


def user_view(registry: Registry, identity: Identity) -> Json:
    """Render /user/ for a token with user:read (and without user:admin)."""
    username = identity.username or ""
    orgs = [org for org in registry.orgs.values() if org.teams_of(username)]
    return {
        "anonymous": False,
        "username": username,
        "avatar": registry.avatars.view(username, "user"),
        "organizations": [_org_summary(registry, org, identity) for org in orgs],
    }


def _org_summary(registry: Registry, org: Organization, identity: Identity) -> Json:
    """Render one entry of the user's organization list."""
    role = team_role(org, identity.username)
    can_create = role in ("creator", "admin") and cap_team_role("creator", identity) is not None
    return {
        "name": org.name,
        "avatar": registry.avatars.view(org.name, "org"),
        "can_create_repo": can_create,
        "public": False,
    }


def org_view(registry: Registry, org: Organization, identity: Identity) -> Json:
    """Render organization detail: admin, member or public (minimal) view."""
    is_admin = is_org_admin(org, identity)
    is_member = org_role(org, identity) is not None
    view: Json = {
        "name": org.name,
        "email": org.email if is_admin else "",
        "avatar": registry.avatars.view(org.name, "user"),
        "is_admin": is_admin,
        "is_member": is_member,
    }
    if is_member:
        teams = {t.name: _team_view(registry, org, t, identity) for t in org.teams}
        view.update(teams=teams, ordered_teams=[team.name for team in org.teams])
    if is_admin:
        view.update(
            invoice_email=org.invoice_email,
            invoice_email_address=org.invoice_email_address,
            tag_expiration_s=org.tag_expiration_s,
            is_free_account=org.is_free_account,
        )
    if is_member:
        view.update(quotas=org.quotas, quota_report=org.quota_report)
    return view


def _team_view(registry: Registry, org: Organization, team: Team, identity: Identity) -> Json:
    """Render one team of the organization detail."""
    repos = registry.namespace_repositories(org.name)
    return {
        "name": team.name,
        "description": team.description,
        "role": team.role,
        "avatar": registry.avatars.view(team.name, "team"),
        "can_view": can_view_team(org, team, identity),
        "repo_count": sum(1 for repo in repos if team.name in repo.team_grants),
        "member_count": len(team.members),
        "is_synced": team.is_synced,
    }


def members_view(registry: Registry, org: Organization) -> Json:
    """Render /members: users on any team (robots left out), with direct grants."""
    users: list[str] = []
    for team in org.teams:
        users += [m for m in team.members if "+" not in m and m not in users]
    repos = registry.namespace_repositories(org.name)
    return {"members": [_member_view(registry, org, user, repos) for user in users]}


def _member_view(registry: Registry, org: Organization, user: str, repos: list[Repository]) -> Json:
    """Render one organization member."""
    return {
        "name": user,
        "kind": "user",
        "avatar": registry.avatars.view(user, "user"),
        "teams": [_team_ref(registry, team) for team in org.teams_of(user)],
        "repositories": [repo.name for repo in repos if user in repo.user_grants],
    }


def _team_ref(registry: Registry, team: Team) -> Json:
    """Render the short {name, avatar} reference to a team."""
    return {"name": team.name, "avatar": registry.avatars.view(team.name, "team")}


def robot_view(
    registry: Registry, robot: Robot, org: Organization | None, token: bool, permissions: bool
) -> Json:
    """Render one robot; `teams`/`repositories` and `token` only when asked."""
    view: Json = {
        "name": robot.name,
        "created": robot.created,
        "last_accessed": robot.last_accessed,
    }
    if permissions:
        teams = org.teams_of(robot.name) if org else []
        namespace = robot.name.split("+", 1)[0]
        repos = registry.namespace_repositories(namespace)
        view["teams"] = [_team_ref(registry, team) for team in teams]
        view["repositories"] = [repo.name for repo in repos if robot.name in repo.user_grants]
    view["description"] = robot.description
    if token:
        view["token"] = robot.token
    return view


def team_members_view(
    registry: Registry, team: Team, can_edit: bool, include_pending: bool
) -> Json:
    """Render /team/{team}/members; invitations only when asked by an admin."""
    members = [_team_member(registry, name, invited=False) for name in team.members]
    if include_pending and can_edit:
        members += [_team_member(registry, name, invited=True) for name in team.invited]
    return {"name": team.name, "members": members, "can_edit": can_edit}


def _team_member(registry: Registry, name: str, invited: bool) -> Json:
    """Render one team member; robots are kind "user" too, told by is_robot."""
    is_robot = "+" in name
    return {
        "name": name,
        "kind": "user",
        "is_robot": is_robot,
        "avatar": registry.avatars.view(name, "robot" if is_robot else "user"),
        "invited": invited,
    }


def repository_row(
    repo: Repository, identity: Identity, starred: bool, extras: dict[str, bool], now: float
) -> Json:
    """Render one repository of the listing; `extras` holds the optional flags."""
    row: Json = {
        "namespace": repo.namespace,
        "name": repo.name,
        "description": repo.description,
        "is_public": repo.is_public,
        "kind": "image",
        "state": repo.state,
    }
    if extras.get("last_modified"):
        row["last_modified"] = repo.last_modified(now)
    if extras.get("popularity"):
        row["popularity"] = repo.popularity
    if not identity.is_anonymous:
        row["is_starred"] = starred
    row["quota_report"] = repo.quota_report
    return row


def repository_detail(
    registry: Registry, repo: Repository, identity: Identity, starred: bool, now: float
) -> Json:
    """Render GET /repository/{ns}/{repo}, the route unmatched URLs fall into."""
    org = registry.orgs.get(repo.namespace)
    role = repo_role(registry, identity, repo.namespace, repo)
    tags = {
        row.name: {
            "name": row.name,
            "size": row.size,
            "last_modified": format_date(row.start_ms // 1000),
            "manifest_digest": row.manifest_digest,
        }
        for row in repo.alive_rows(now)
    }
    return {
        "namespace": repo.namespace,
        "name": repo.name,
        "kind": "image",
        "description": repo.description,
        "is_public": repo.is_public,
        "is_organization": org is not None,
        "is_starred": starred,
        "status_token": repo.status_token,
        "trust_enabled": False,
        "tag_expiration_s": org.tag_expiration_s if org else 1209600,
        "is_free_account": org.is_free_account if org else True,
        "state": repo.state,
        "tags": tags,
        "can_write": role in ("write", "admin"),
        "can_admin": role == "admin",
    }


def tag_view(row: TagRow) -> Json:
    """Render one tag row; end and list keys appear only when they apply."""
    start_ts = row.start_ms // 1000
    view: Json = {"name": row.name, "reversion": row.reversion, "start_ts": start_ts}
    if row.end_ts is not None:
        view["end_ts"] = row.end_ts
    view.update(
        manifest_digest=row.manifest_digest,
        is_manifest_list=row.is_manifest_list,
        size=row.size,
        last_modified=format_date(start_ts),
    )
    if row.end_ts is not None:
        view["expiration"] = format_date(row.end_ts)
    if row.is_manifest_list:
        presence = dict(row.children)
        view.update(
            is_sparse=not all(presence.values()),
            child_manifest_count=len(presence),
            present_child_count=sum(presence.values()),
            child_manifests_presence=presence,
        )
    return view

"""Quay's permission rules: team roles, repository grants and scope ceilings."""

from __future__ import annotations

from .auth import REPO_ROLES, TEAM_ROLES, Identity, cap_repo_role, cap_team_role, strongest
from .model import Organization, Registry, Repository, Team


def team_role(org: Organization, member: str | None) -> str | None:
    """Return the strongest team role a user holds in an organization."""
    return strongest([team.role for team in org.teams_of(member or "")], TEAM_ROLES)


def org_role(org: Organization, identity: Identity) -> str | None:
    """Return the caller's team role in an organization after the scope ceiling."""
    return cap_team_role(team_role(org, identity.username), identity)


def is_org_admin(org: Organization, identity: Identity) -> bool:
    """Tell whether the caller is an effective admin of the organization."""
    return org_role(org, identity) == "admin"


def administers_namespace(registry: Registry, identity: Identity, namespace: str) -> bool:
    """Tell whether the caller passes Quay's organization admin check."""
    if identity.is_anonymous:
        return False
    org = registry.orgs.get(namespace)
    if org is not None:
        return is_org_admin(org, identity)
    # A user's own namespace counts as an organization they administer; the
    # lookup after the check then fails, which is why Quay answers 404 there.
    return namespace == identity.username and cap_team_role("admin", identity) == "admin"


def can_view_team(org: Organization, team: Team, identity: Identity) -> bool:
    """Tell whether the caller may list a team's members."""
    if is_org_admin(org, identity):
        return True
    on_team = identity.username in team.members
    return on_team and cap_team_role("member", identity) is not None


def _namespace_role(registry: Registry, username: str, namespace: str) -> str | None:
    """Return the namespace-wide repository role: owners and admin teams get admin."""
    if username == namespace:
        return "admin"
    org = registry.orgs.get(namespace)
    if org is not None and team_role(org, username) == "admin":
        return "admin"
    return None


def _granted_roles(registry: Registry, username: str, repo: Repository) -> list[str]:
    """Collect a user's direct and team grants on a repository."""
    roles = [repo.user_grants[username]] if username in repo.user_grants else []
    org = registry.orgs.get(repo.namespace)
    if org is not None:
        teams = org.teams_of(username)
        roles += [repo.team_grants[t.name] for t in teams if t.name in repo.team_grants]
    return roles


def repo_role(
    registry: Registry, identity: Identity, namespace: str, repo: Repository | None
) -> str | None:
    """Return the caller's repository role after the scope ceiling.

    `repo` is None when the path names no repository: namespace-wide roles
    still apply, which is how org admins get 404 where others get 403.
    """
    if identity.username is None:
        return None
    roles = [_namespace_role(registry, identity.username, namespace)]
    if repo is not None:
        roles += _granted_roles(registry, identity.username, repo)
    held = strongest([role for role in roles if role], REPO_ROLES)
    return cap_repo_role(held, identity)


def can_read_repo(
    registry: Registry, identity: Identity, namespace: str, repo: Repository | None
) -> bool:
    """Tell whether the caller may read a repository (public ones: everybody)."""
    if repo is not None and repo.is_public:
        return True
    return repo_role(registry, identity, namespace, repo) is not None


def lists_repository(registry: Registry, identity: Identity, repo: Repository) -> bool:
    """Tell whether a repository is in the caller's listing without public=true.

    The listing follows the user's grants and ignores the token's scopes.
    """
    if identity.username is None:
        return False
    if _namespace_role(registry, identity.username, repo.namespace):
        return True
    return bool(_granted_roles(registry, identity.username, repo))

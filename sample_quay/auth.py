"""Who is calling: sample tokens, identities and Quay's scope ceilings."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .responses import Headers

# Bearer token strings the sample server accepts, keyed by the labels that
# the recorded samples use for them (see data/INDEX.txt).
TOKENS: dict[str, str] = {
    "full": "sample-full-token",
    "repo_read": "sample-repo-read-token",
    "reader_full": "sample-reader-token",
    "expired": "sample-expired-token",
}

# label -> (username, scopes). The expired token has no entry: Quay logs the
# failed lookup and then runs the request as anonymous.
_TOKEN_GRANTS: dict[str, tuple[str, frozenset[str]]] = {
    "full": ("devtable", frozenset({"repo:read", "org:admin", "user:read"})),
    "repo_read": ("devtable", frozenset({"repo:read"})),
    "reader_full": ("reader", frozenset({"repo:read", "org:admin", "user:read"})),
}

NO_HEADER = "none"
UNKNOWN_TOKEN = "bad"

REPO_ROLES = ("read", "write", "admin")
TEAM_ROLES = ("member", "creator", "admin")

# The strongest role each scope lets a token use (Quay's "scope ceiling").
_REPO_CEILING = {"repo:read": "read", "repo:write": "write", "repo:admin": "admin"}
_TEAM_CEILING = {"org:admin": "admin", "repo:create": "creator"}


@dataclass(frozen=True)
class Identity:
    """The caller of one request: a token label, a user (or none) and scopes."""

    label: str
    username: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def is_anonymous(self) -> bool:
        """Tell whether the request runs without a signed-in user."""
        return self.username is None

    def has_scope(self, scope: str) -> bool:
        """Tell whether the token carries the given scope."""
        return scope in self.scopes


ANONYMOUS = Identity(NO_HEADER)


def identify(headers: Headers, allow_basic: bool = False) -> Identity:
    """Resolve the Authorization header the way Quay's API does."""
    header = headers.get("Authorization")
    if not header:
        return ANONYMOUS
    scheme, _, credential = header.strip().partition(" ")
    token = credential.strip()
    if allow_basic and scheme.lower() == "basic":
        # Only the security endpoint honours Basic auth; "$oauthtoken" as the
        # user name means the password is an OAuth token.
        token = _basic_oauth_token(token)
    elif scheme.lower() != "bearer":
        token = ""
    return _identity_for_token(token)


def _basic_oauth_token(credential: str) -> str:
    """Return the OAuth token inside Basic credentials, or '' if there is none."""
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    user, _, password = decoded.partition(":")
    return password if user == "$oauthtoken" else ""


def _identity_for_token(token: str) -> Identity:
    """Map a token string to its identity; unknown tokens run as anonymous."""
    label = next((name for name, value in TOKENS.items() if value == token), None)
    if label is None:
        return Identity(UNKNOWN_TOKEN)
    grant = _TOKEN_GRANTS.get(label)
    if grant is None:
        return Identity(label)
    username, scopes = grant
    return Identity(label, username, scopes)


def strongest(roles: list[str], order: tuple[str, ...]) -> str | None:
    """Return the strongest role of a list, given roles ordered weakest first."""
    ranked = [order.index(role) for role in roles if role in order]
    return order[max(ranked)] if ranked else None


def cap_repo_role(role: str | None, identity: Identity) -> str | None:
    """Limit a repository role to what the token's scopes allow."""
    return _cap(role, identity, _REPO_CEILING, REPO_ROLES)


def cap_team_role(role: str | None, identity: Identity) -> str | None:
    """Limit an organization team role to what the token's scopes allow."""
    return _cap(role, identity, _TEAM_CEILING, TEAM_ROLES)


def _cap(
    role: str | None, identity: Identity, ceiling: dict[str, str], order: tuple[str, ...]
) -> str | None:
    """Return the weaker of a role and the strongest role the scopes allow."""
    allowed = strongest([ceiling[s] for s in identity.scopes if s in ceiling], order)
    if role is None or allowed is None:
        return None
    return order[min(order.index(role), order.index(allowed))]

"""In-memory registry: organizations, teams, robots, repositories and their images."""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# A JSON object as the API sends it.
Json = dict[str, Any]

# The d3 palettes Quay picks avatar colours from; used only for avatars that
# were never recorded (recorded ones keep their own hash and colour).
_AVATAR_COLORS = (
    "#1f77b4",
    "#aec7e8",
    "#ff7f0e",
    "#ffbb78",
    "#2ca02c",
    "#98df8a",
    "#d62728",
    "#ff9896",
    "#9467bd",
    "#c5b0d5",
    "#8c564b",
    "#c49c94",
    "#e377c2",
    "#f7b6d2",
    "#7f7f7f",
    "#c7c7c7",
    "#bcbd22",
    "#dbdb8d",
    "#17becf",
    "#9edae5",
    "#393b79",
    "#5254a3",
    "#6b6ecf",
    "#9c9ede",
    "#637939",
    "#8ca252",
    "#b5cf6b",
    "#cedb9c",
    "#8c6d31",
    "#bd9e39",
    "#e7ba52",
    "#e7cb94",
    "#843c39",
    "#ad494a",
    "#d6616b",
    "#e7969c",
    "#7b4173",
    "#a55194",
    "#ce6dbd",
    "#de9ed6",
)


def made_up_status_token(path: str) -> str:
    """Return a stable UUID-shaped status token for a repository never recorded."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, path))


@dataclass
class Avatars:
    """Avatar hash and colour per entity name (user, robot, team or org)."""

    known: dict[str, tuple[str, str]] = field(default_factory=dict)

    def remember(self, name: str, digest: str, color: str) -> None:
        """Keep a recorded avatar so it is served unchanged."""
        self.known.setdefault(name, (digest, color))

    def view(self, name: str, kind: str) -> dict[str, str]:
        """Render the avatar object; unknown names get a hash of the name."""
        if name not in self.known:
            digest = hashlib.sha256(name.encode()).hexdigest()
            self.known[name] = (digest, _AVATAR_COLORS[int(digest, 16) % len(_AVATAR_COLORS)])
        digest, color = self.known[name]
        return {"name": name, "hash": digest, "color": color, "kind": kind}


@dataclass
class Team:
    """A team of an organization; members include robots, in listing order."""

    name: str
    role: str
    description: str = ""
    members: list[str] = field(default_factory=list)
    invited: list[str] = field(default_factory=list)
    is_synced: bool = False


@dataclass
class Robot:
    """A robot account; `name` is the full "<namespace>+<short>" name."""

    name: str
    token: str
    created: str | None = None
    last_accessed: str | None = None
    description: str | None = ""


@dataclass
class Organization:
    """An organization with its teams, robots and admin-only settings."""

    name: str
    email: str
    teams: list[Team] = field(default_factory=list)
    robots: list[Robot] = field(default_factory=list)
    invoice_email: bool = False
    invoice_email_address: str | None = None
    tag_expiration_s: int = 1209600
    is_free_account: bool = True
    quotas: list[Json] = field(default_factory=list)
    quota_report: Json = field(default_factory=dict)

    def team(self, name: str) -> Team | None:
        """Find a team by its exact (case-sensitive) name."""
        return next((team for team in self.teams if team.name == name), None)

    def teams_of(self, member: str) -> list[Team]:
        """List the teams a user or robot sits on, in team order."""
        return [team for team in self.teams if member in team.members]


@dataclass(frozen=True)
class TagRow:
    """One tag history row; alive while it has no end or its end is ahead."""

    name: str
    start_ms: int
    manifest_digest: str
    size: int | None
    end_ts: int | None = None
    is_manifest_list: bool = False
    children: tuple[tuple[str, bool], ...] = ()
    reversion: bool = False

    def is_alive(self, now: float) -> bool:
        """Tell whether the row is a current tag at time `now`."""
        return self.end_ts is None or self.end_ts > now


@dataclass(frozen=True)
class Scan:
    """The security status of one manifest, with the report when scanned."""

    status: str
    report: Json | None = None


@dataclass
class Repository(ABC):
    """A repository's listing facts; subclasses supply tags, manifests and scans."""

    id: int
    namespace: str
    name: str
    description: str | None
    is_public: bool = False
    state: str = "NORMAL"
    quota_report: Json = field(default_factory=dict)
    popularity: float = 0.0
    status_token: str = ""
    user_grants: dict[str, str] = field(default_factory=dict)
    team_grants: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """Return "<namespace>/<name>"."""
        return f"{self.namespace}/{self.name}"

    @abstractmethod
    def tag_rows(self) -> Sequence[TagRow]:
        """Return every tag row, newest first (start time desc, then name)."""

    @abstractmethod
    def stored_manifest(self, digest: str) -> Json | None:
        """Return the manifest view of any manifest stored in this repository."""

    @abstractmethod
    def scan(self, digest: str) -> Scan | None:
        """Return the security status of a stored manifest, alive or not."""

    def alive_rows(self, now: float) -> list[TagRow]:
        """Return the rows that are current tags at time `now`."""
        return [row for row in self.tag_rows() if row.is_alive(now)]

    def reachable_manifest(self, digest: str, now: float) -> Json | None:
        """Return a manifest only if an alive tag or alive list references it."""
        for row in self.alive_rows(now):
            present = dict(row.children)
            if row.manifest_digest == digest or present.get(digest, False):
                return self.stored_manifest(digest)
        return None

    def last_modified(self, now: float) -> int | None:
        """Return the start second of the newest alive tag, or None."""
        starts = [row.start_ms // 1000 for row in self.alive_rows(now)]
        return max(starts, default=None)


def sort_rows(rows: list[TagRow]) -> list[TagRow]:
    """Order rows as Quay lists them: newest millisecond start first, then name."""
    return sorted(rows, key=lambda row: (-row.start_ms, row.name))


@dataclass
class StoredRepository(Repository):
    """A repository whose rows, manifests and scans are held explicitly."""

    rows: list[TagRow] = field(default_factory=list)
    manifests: dict[str, Json] = field(default_factory=dict)
    scans: dict[str, Scan] = field(default_factory=dict)

    def tag_rows(self) -> Sequence[TagRow]:
        """Return the stored rows (kept sorted newest first)."""
        return self.rows

    def stored_manifest(self, digest: str) -> Json | None:
        """Return the stored manifest view for a digest."""
        return self.manifests.get(digest)

    def scan(self, digest: str) -> Scan | None:
        """Return the stored scan of a digest that has a stored manifest."""
        return self.scans.get(digest) if digest in self.manifests else None


@dataclass
class Registry:
    """Everything the sample server knows, in creation order."""

    avatars: Avatars = field(default_factory=Avatars)
    orgs: dict[str, Organization] = field(default_factory=dict)
    user_robots: dict[str, list[Robot]] = field(default_factory=dict)
    starred: dict[str, set[str]] = field(default_factory=dict)
    repositories: list[Repository] = field(default_factory=list)
    _by_path: dict[str, Repository] = field(default_factory=dict)
    _by_namespace: dict[str, list[Repository]] = field(default_factory=dict)

    def add_repository(self, repo: Repository) -> None:
        """Register a repository; ids must grow, as Quay's listing order needs."""
        if self.repositories and repo.id <= self.repositories[-1].id:
            raise ValueError(f"repository id {repo.id} is not increasing")
        self.repositories.append(repo)
        self._by_path[repo.path] = repo
        self._by_namespace.setdefault(repo.namespace, []).append(repo)

    def repository(self, path: str) -> Repository | None:
        """Find a repository by its exact "<namespace>/<name>" path."""
        return self._by_path.get(path)

    def namespace_repositories(self, namespace: str) -> list[Repository]:
        """List a namespace's repositories in id order."""
        return self._by_namespace.get(namespace, [])

    def next_repository_id(self) -> int:
        """Return an id larger than every repository's so far."""
        return self.repositories[-1].id + 1 if self.repositories else 1

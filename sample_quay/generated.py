"""Generated organizations and repositories, for volume and paging tests.

Nothing per tag, manifest or package is stored: rows, manifests and reports
are derived from (repository, index) on demand, and only a small per-repository
digest index is cached, so 100,000 tags and a million package rows stay cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .manifests import (
    EMPTY_LAYER_DIGEST,
    EMPTY_LAYER_SIZE,
    Layer,
    ManifestParts,
    Platform,
    content_digest,
    fake_digest,
    manifest_list,
    manifest_view,
    schema2,
)
from .model import (
    Json,
    Organization,
    Registry,
    Repository,
    Robot,
    Scan,
    TagRow,
    Team,
    made_up_status_token,
)
from .reports import number, scanned_report

# Newest generated push: just after the recorded pushes, before the recording time.
GENERATED_EPOCH = 1796397300
# A live tag with a scheduled expiry (2100-01-01) shows the "future end_ts" case.
FAR_FUTURE = 4102444800
TAG_SPACING_S = 600
GENERATED_USERS = ("gen-dev-1", "gen-dev-2")
_ARCHES = (("amd64", None), ("arm64", "v8"))


@dataclass(frozen=True)
class ScaleSettings:
    """How much to generate; counts are per organization, repository or image."""

    orgs: int = 1
    repos_per_org: int = 3
    active_tags: int = 110
    dead_tags: int = 15
    shared_digest_share: float = 0.25
    manifest_lists: int = 2
    packages: int = 25
    vulnerabilities: int = 8


@dataclass(frozen=True)
class _Image:
    """Which generated image a digest is: kind ('image', 'list', 'child'), index, arch."""

    kind: str
    index: int
    arch: int = 0


def org_name(index: int) -> str:
    """Name the index-th generated organization."""
    return f"gen-org-{index:03d}"


def add_generated(registry: Registry, settings: ScaleSettings) -> None:
    """Add the generated organizations (owned by devtable) and their repositories."""
    for org_index in range(settings.orgs):
        org = _generated_org(org_name(org_index))
        registry.orgs[org.name] = org
        for repo_index in range(settings.repos_per_org):
            repo_id = registry.next_repository_id()
            registry.add_repository(_generated_repo(repo_id, org.name, repo_index, settings))


def _generated_org(name: str) -> Organization:
    """Build one organization: owners, developers, two robots and an invitation."""
    org = Organization(name, f"{name}@example.test")
    org.teams = [
        Team("owners", "admin", members=["devtable", f"{name}+deployer"]),
        Team(
            "developers",
            "member",
            "Pushes and pulls every repository.",
            members=[*GENERATED_USERS, f"{name}+scanner"],
            invited=["outsideorg"],
        ),
    ]
    created = "Fri, 04 Dec 2026 15:00:00 -0000"
    org.robots = [
        Robot(
            f"{name}+deployer",
            f"ROBOT-SECRET-PLACEHOLDER-{name}-deployer",
            created,
            "Fri, 04 Dec 2026 15:30:00 -0000",
            "Pushes release images",
        ),
        Robot(f"{name}+scanner", f"ROBOT-SECRET-PLACEHOLDER-{name}-scanner", created, None, ""),
    ]
    org.quota_report = {
        "quota_bytes": 0,
        "configured_quota": None,
        "running_backfill": "waiting",
        "backfill_status": "waiting",
    }
    return org


def _generated_repo(
    repo_id: int, namespace: str, index: int, settings: ScaleSettings
) -> GeneratedRepository:
    """Build one repository's listing facts and grants."""
    name = f"app-{index:04d}"
    path = f"{namespace}/{name}"
    repo = GeneratedRepository(
        id=repo_id,
        namespace=namespace,
        name=name,
        description=f"Generated repository {index} of {namespace}" if index % 4 else None,
        is_public=index % 5 == 4,
        quota_report={"quota_bytes": number(path, 10**9), "configured_quota": None},
        popularity=float(number(f"{path}:popularity", 50)),
        status_token=made_up_status_token(path),
        team_grants={"developers": "write"},
        settings=settings,
        newest_ts=GENERATED_EPOCH - repo_id * 7,
    )
    if index == 0:
        repo.user_grants[f"{namespace}+scanner"] = "read"
    return repo


@dataclass
class GeneratedRepository(Repository):
    """A repository whose tags, manifests and scans are derived from indexes."""

    settings: ScaleSettings = ScaleSettings()
    newest_ts: int = GENERATED_EPOCH

    def _key(self) -> tuple[str, ScaleSettings, int]:
        """Return the hashable inputs every derived value depends on."""
        return (self.path, self.settings, self.newest_ts)

    def tag_rows(self) -> Sequence[TagRow]:
        """Return the derived rows, newest first."""
        return _plan(self._key())[0]

    def last_modified(self, now: float) -> int | None:
        """Return the newest row's start without deriving every row."""
        return self.newest_ts if self.settings.active_tags else None

    def stored_manifest(self, digest: str) -> Json | None:
        """Derive the manifest view of a digest stored in this repository."""
        image = _plan(self._key())[1].get(digest)
        if image is None:
            return None
        return manifest_view(digest, _parts(self.path, image))

    def scan(self, digest: str) -> Scan | None:
        """Derive the security status (and report) of a stored digest."""
        image = _plan(self._key())[1].get(digest)
        if image is None:
            return None
        status = _scan_status(digest, image)
        if status != "scanned":
            return Scan(status)
        layers = _parts(self.path, image).layers or []
        blobs = [layer["blob_digest"] for layer in layers]
        blobs = [blob for blob in blobs if blob != EMPTY_LAYER_DIGEST] or blobs
        settings = self.settings
        report = scanned_report(digest, blobs, settings.packages, settings.vulnerabilities)
        return Scan(status, report)


def _scan_status(digest: str, image: _Image) -> str:
    """Give each generated digest one fixed status, mostly 'scanned'."""
    if image.kind == "list":
        # Lists are never scanned: queued until the worker marks them unsupported.
        return "unsupported" if image.index % 2 == 0 else "queued"
    bucket = number(digest, 20)
    return {0: "queued", 1: "failed", 2: "manifest_layer_too_large"}.get(bucket, "scanned")


@lru_cache(maxsize=64)
def _plan(key: tuple[str, ScaleSettings, int]) -> tuple[list[TagRow], dict[str, _Image]]:
    """Derive a repository's rows and its digest index (cached per repository)."""
    builder = _PlanBuilder(*key)
    active = [builder.active_row(r) for r in range(builder.settings.active_tags)]
    dead = [builder.dead_row(d, active) for d in range(builder.settings.dead_tags)]
    return active + dead, builder.index


class _PlanBuilder:
    """Derive the rows of one repository and remember which digest is which image."""

    def __init__(self, path: str, settings: ScaleSettings, newest_ts: int) -> None:
        """Start with an empty digest index."""
        self.path = path
        self.settings = settings
        self.newest_ts = newest_ts
        self.index: dict[str, _Image] = {}

    def row(self, name: str, start: int, image: _Image, end_ts: int | None) -> TagRow:
        """Make a tag row for an image and index its digest (and its children's)."""
        parts = _parts(self.path, image)
        digest = content_digest(parts.data)
        self.index[digest] = image
        children = []
        if image.kind == "list":
            for arch in range(len(_ARCHES)):
                child = _Image("child", image.index, arch)
                child_digest = content_digest(_parts(self.path, child).data)
                self.index[child_digest] = child
                children.append((child_digest, True))
        size = None if image.kind == "list" else parts.compressed_size
        return TagRow(
            name, start * 1000, digest, size, end_ts, image.kind == "list", tuple(children)
        )

    def active_row(self, r: int) -> TagRow:
        """Derive the r-th newest live tag; neighbours share digests at the set share."""
        image_index = math.floor(r * (1 - self.settings.shared_digest_share))
        kind = "list" if image_index < self.settings.manifest_lists else "image"
        name = {0: "latest", 1: "nightly"}.get(r, f"v{1 + r // 100}.{(r // 10) % 10}.{r % 10}")
        end_ts = FAR_FUTURE if r == 1 else None
        start = self.newest_ts - r * TAG_SPACING_S
        return self.row(name, start, _Image(kind, image_index), end_ts)

    def dead_row(self, d: int, active: list[TagRow]) -> TagRow:
        """Derive the d-th history row: deleted branches and overwritten versions."""
        start = self.newest_ts - (self.settings.active_tags + d) * TAG_SPACING_S
        end_ts = start + TAG_SPACING_S // 2
        replaced = active[d % len(active)] if active and d % 4 else None
        if replaced is not None and d % 4 == 3:
            # Some history rows point at a digest that is still alive elsewhere.
            image = self.index[replaced.manifest_digest]
        else:
            image = _Image("image", self.settings.active_tags + d)
        name = replaced.name if replaced else f"feature-{d}"
        return self.row(name, start, image, end_ts)


@lru_cache(maxsize=4096)
def _parts(path: str, image: _Image) -> ManifestParts:
    """Derive the manifest of a generated image (a list, or a schema-2 image)."""
    if image.kind == "list":
        children = []
        for arch, (architecture, variant) in enumerate(_ARCHES):
            child = _parts(path, _Image("child", image.index, arch))
            size = len(child.data.encode())
            children.append(Platform(content_digest(child.data), size, architecture, variant))
        return manifest_list(children)
    seed = f"{path}:{image.kind}:{image.index}:{image.arch}"
    created = GENERATED_EPOCH - number(f"{seed}:created", 10**6)
    layers = [
        Layer(
            fake_digest(f"{seed}:blob:{i}"),
            1000 + number(f"{seed}:size:{i}", 30_000_000),
            _build_step(seed, i),
            created,
        )
        for i in range(1 + number(seed, 4))
    ]
    # A metadata-only step, as real image histories have: placeholder blob, 32 bytes.
    cmd = '/bin/sh -c #(nop)  CMD ["/bin/sh"]'
    layers.append(Layer(EMPTY_LAYER_DIGEST, EMPTY_LAYER_SIZE, cmd, created))
    return schema2(layers, seed)


def _build_step(seed: str, index: int) -> str:
    """Describe the build command that produced a layer."""
    if index == 0:
        return f"/bin/sh -c #(nop) ADD file:{fake_digest(seed)[7:71]} in / "
    return f"/bin/sh -c apk add --no-cache {_PACKAGE_STEPS[index % len(_PACKAGE_STEPS)]}"


_PACKAGE_STEPS = ("ca-certificates", "openssl", "python3 py3-pip", "curl", "tzdata")

"""Build the registry from the responses recorded on a real Quay (data/*.json).

Recorded facts are read from the files; what no file shows is synthesized
here in the recorded shapes, and every such choice is listed in README.md.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from .manifests import (
    Layer,
    ManifestParts,
    fake_digest,
    helm_chart,
    manifest_view,
    schema1,
    schema2,
)
from .model import (
    Json,
    Organization,
    Registry,
    Robot,
    Scan,
    StoredRepository,
    TagRow,
    Team,
    made_up_status_token,
    sort_rows,
)
from .reports import scanned_report

DATA_DIR = Path(__file__).parent / "data"

# Organizations in devtable's /user/ list that have no recordings of their own.
SYNTHESIZED_ORGS = ("testorgforautoprune", "library", "titi", "sellnsmall", "proxyorg")

# Second of the recorded pushes to buynlarge/orgrepo, anotherorgrepo and publicrepo.
PUSH_TS = 1796397200

ORGREPO_PROD = "sha256:5add2b6543fbc044d0185e4265abfaa99e27c0d9b290c53d892fa2919f006972"
ANOTHER_PROD = "sha256:406b65e72040275476af8dda0d4f3fde39a002150d71acd7a50927f4174df281"
ANOTHER_LATEST = "sha256:5f3f8c4473905b1f006286e1dc93844cb39689742bbb14dc896be3b481039295"
MULTIARCH_ARM64 = "sha256:a8b7eab3b074648546e6083f5da3c65a9c5c54a98d2aaf580ebe75538454c3d2"
MULTIARCH_CREATED = 1796397295


@cache
def sample(name: str) -> Json:
    """Load one recorded exchange (request, status, headers, body); read-only."""
    exchange: Json = json.loads((DATA_DIR / name).read_text())
    return exchange


def body(name: str) -> Any:
    """Return the recorded response body of one sample file."""
    return sample(name)["body"]


def downstream_detail(digest: str) -> str:
    """Return the recorded 'scanner unreachable' message, for any digest."""
    detail: str = body("secscan_down_completed_orgrepo_prod.json")["detail"]
    return detail.replace(ORGREPO_PROD, digest)


def build_recorded_registry() -> Registry:
    """Assemble the registry the samples were recorded from."""
    registry = Registry()
    _remember_avatars(registry)
    for org in _organizations():
        registry.orgs[org.name] = org
    registry.user_robots["devtable"] = [_robot("devtable+dtrobot")]
    _add_repositories(registry)
    registry.starred["devtable"] = {
        f"{repo['namespace']}/{repo['name']}"
        for repo in body("repository_starred-true.json")["repositories"]
    }
    return registry


def _remember_avatars(registry: Registry) -> None:
    """Keep every recorded avatar so entities look exactly as recorded."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"name", "hash", "color", "kind"}:
                registry.avatars.remember(node["name"], node["hash"], node["color"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in (
        "user.json",
        "reader_user.json",
        "organization_buynlarge_members.json",
        "organization_buynlarge_team_creators_members.json",
        "organization_buynlarge_team_owners_members.json",
        "organization_buynlarge_team_readers_members_includePending-true.json",
        "organization_buynlarge.json",
        "organization_manyrepos.json",
    ):
        walk(body(name))


def _organizations() -> list[Organization]:
    """Return the organizations in the order devtable's /user/ lists them."""
    recorded = {"buynlarge": _buynlarge(), "manyrepos": _manyrepos()}
    names = [org["name"] for org in body("user.json")["organizations"]]
    return [recorded.get(name) or _small_org(name) for name in names]


def _org_settings(name: str, detail: Json) -> Organization:
    """Create an organization with the admin-view settings of a recorded detail."""
    return Organization(
        name=name,
        email=detail["email"],
        invoice_email=detail["invoice_email"],
        invoice_email_address=detail["invoice_email_address"],
        tag_expiration_s=detail["tag_expiration_s"],
        is_free_account=detail["is_free_account"],
        quotas=detail["quotas"],
        quota_report=detail["quota_report"],
    )


def _buynlarge() -> Organization:
    """Build buynlarge from its detail, team member lists and robots."""
    detail = body("organization_buynlarge.json")
    org = _org_settings("buynlarge", detail)
    pending = body("organization_buynlarge_team_readers_members_includePending-true.json")
    invited = {"readers": [m["name"] for m in pending["members"] if m["invited"]]}
    for name in detail["ordered_teams"]:
        recorded = detail["teams"][name]
        members = body(f"organization_buynlarge_team_{name}_members.json")["members"]
        org.teams.append(
            Team(
                name,
                recorded["role"],
                recorded["description"],
                members=[member["name"] for member in members],
                invited=invited.get(name, []),
                is_synced=recorded["is_synced"],
            )
        )
    robots = body("organization_buynlarge_robots_permissions-true.json")["robots"]
    org.robots = [
        Robot(r["name"], r["token"], r["created"], r["last_accessed"], r["description"])
        for r in robots
    ]
    return org


def _manyrepos() -> Organization:
    """Build manyrepos: one owners team, no robots."""
    detail = body("organization_manyrepos.json")
    org = _org_settings("manyrepos", detail)
    members = body("organization_manyrepos_members.json")["members"]
    org.teams = [Team("owners", "admin", members=[m["name"] for m in members])]
    return org


def _small_org(name: str) -> Organization:
    """Synthesize an organization that devtable owns alone."""
    org = Organization(name, f"quay-{name}@example.test")
    org.teams = [Team("owners", "admin", members=["devtable"])]
    org.quota_report = {
        "quota_bytes": 0,
        "configured_quota": None,
        "running_backfill": "waiting",
        "backfill_status": "waiting",
    }
    return org


def _robot(name: str) -> Robot:
    """Synthesize a robot like the recorded ones (placeholder secret, never used)."""
    short = name.split("+", 1)[1]
    created = "Fri, 04 Dec 2026 15:13:20 -0000"
    return Robot(name, f"ROBOT-SECRET-PLACEHOLDER-{short}", created, None, "")


def _listed_repositories() -> list[Json]:
    """Return every repository row of the server-wide listing, in id order."""
    rows: list[Json] = []
    for page in (1, 2, 3):
        rows += body(f"repository_public-true_follow_page{page}.json")["repositories"]
    return rows


def _add_repositories(registry: Registry) -> None:
    """Create the repositories in the recorded listing order, with their grants."""
    builders = {
        "buynlarge/orgrepo": _orgrepo,
        "buynlarge/anotherorgrepo": _anotherorgrepo,
        "buynlarge/multiarch": _multiarch,
        "public/publicrepo": _publicrepo,
        "devtable/superwide": _superwide,
        "testorgforautoprune/autoprunerepo": _autoprunerepo,
    }
    for repo_id, row in enumerate(_listed_repositories(), start=1):
        path = f"{row['namespace']}/{row['name']}"
        repo = StoredRepository(
            id=repo_id,
            namespace=row["namespace"],
            name=row["name"],
            description=row["description"],
            is_public=row["is_public"],
            state=row["state"],
            quota_report=row["quota_report"],
            status_token=_status_token(path),
        )
        _grant(repo)
        if path in builders:
            builders[path](repo)
            repo.rows = sort_rows(repo.rows)
        registry.add_repository(repo)


def _status_token(path: str) -> str:
    """Return the recorded status token, or a stable made-up one."""
    recorded = {
        "buynlarge/orgrepo": "repository_buynlarge_orgrepo.json",
        "buynlarge/multiarch": "repository_buynlarge_multiarch.json",
    }
    if path in recorded:
        token: str = body(recorded[path])["status_token"]
        return token
    return made_up_status_token(path)


def _grant(repo: StoredRepository) -> None:
    """Apply the grants the recordings show.

    Direct user grants come from the members lists; the readers team's two
    grants are inferred from what reader (only on that team) can list.
    """
    if repo.namespace == "manyrepos":
        repo.user_grants["devtable"] = "admin"
    elif repo.path == "buynlarge/orgrepo":
        repo.team_grants["readers"] = "read"
    elif repo.path == "buynlarge/multiarch":
        repo.user_grants.update(devtable="admin", public="read")
        repo.team_grants["readers"] = "read"


def _recorded_rows(name: str) -> list[TagRow]:
    """Read tag rows from a recorded listing, keeping its order for same-second rows."""
    rows = []
    for position, tag in enumerate(body(name)["tags"]):
        presence = tag.get("child_manifests_presence", {})
        rows.append(
            TagRow(
                name=tag["name"],
                start_ms=tag["start_ts"] * 1000 + 999 - position,
                manifest_digest=tag["manifest_digest"],
                size=tag["size"],
                end_ts=tag.get("end_ts"),
                is_manifest_list=tag["is_manifest_list"],
                children=tuple(presence.items()),
            )
        )
    return rows


def _store(repo: StoredRepository, digest: str, parts: ManifestParts, scan: Scan) -> None:
    """Store a manifest view and its security status."""
    repo.manifests[digest] = manifest_view(digest, parts)
    repo.scans[digest] = scan


def _store_recorded(repo: StoredRepository, manifest_file: str, scan: Scan) -> None:
    """Store a recorded manifest response verbatim."""
    manifest = body(manifest_file)
    repo.manifests[manifest["digest"]] = manifest
    repo.scans[manifest["digest"]] = scan


def _recorded_scan(name: str) -> Scan:
    """Read a recorded security answer."""
    answer = body(name)
    return Scan(answer["status"], answer["data"])


def _schema1_image(repo: StoredRepository, tag: str, layer_count: int) -> ManifestParts:
    """Synthesize a schema-1 image of 23-byte layers, like Quay's own sample images."""
    layers = [Layer(fake_digest(f"{repo.path}:{tag}:blob:{i}"), 23) for i in range(layer_count)]
    return schema1(repo.path, tag, layers)


def _schema2_image(seed: str, size: int) -> ManifestParts:
    """Synthesize a schema-2 image of `size` bytes, like the recorded amd64 child."""
    sizes = [29] * (size // 29) + ([size % 29] if size % 29 else [])
    layers = [
        Layer(
            fake_digest(f"{seed}:blob:{i}"), layer_size, f"/bin/sh -c layer {i}", MULTIARCH_CREATED
        )
        for i, layer_size in enumerate(sizes)
    ]
    return schema2(layers, seed)


def _orgrepo(repo: StoredRepository) -> None:
    """orgrepo: latest (recorded, queued) and prod (synthesized, scanned)."""
    repo.rows = _recorded_rows("repository_buynlarge_orgrepo_tag_limit-100_page-1_active.json")
    _store_recorded(
        repo,
        "repository_buynlarge_orgrepo_manifest_sha256-997be13bf78e.json",
        _recorded_scan("secscan_queued_orgrepo_latest.json"),
    )
    _store(
        repo,
        ORGREPO_PROD,
        _schema1_image(repo, "prod", 4),
        _recorded_scan("secscan_scanned_orgrepo_prod_vulns.json"),
    )


def _anotherorgrepo(repo: StoredRepository) -> None:
    """anotherorgrepo: never recorded but its two scans; prod failed, latest unsupported."""
    start_ms = PUSH_TS * 1000
    repo.rows = [
        TagRow("prod", start_ms + 999, ANOTHER_PROD, 92),
        TagRow("latest", start_ms + 998, ANOTHER_LATEST, 92),
    ]
    _store(
        repo,
        ANOTHER_PROD,
        _schema1_image(repo, "prod", 4),
        _recorded_scan("secscan_failed_anotherorgrepo_prod.json"),
    )
    # A Helm chart is a non-container artifact, which is what "unsupported" means.
    chart = Layer(fake_digest(f"{repo.path}:chart"), 92)
    _store(
        repo,
        ANOTHER_LATEST,
        helm_chart(chart, f"{repo.path}:chart-config"),
        _recorded_scan("secscan_unsupported_anotherorgrepo_latest.json"),
    )


def _multiarch(repo: StoredRepository) -> None:
    """multiarch: full history recorded; the arm64 child and dead images synthesized."""
    repo.rows = _recorded_rows("repository_buynlarge_multiarch_tag_limit-100_page-1_all.json")
    _store_recorded(
        repo,
        "repository_buynlarge_multiarch_manifest_list_sha256-cb6902531bf3.json",
        _recorded_scan("secscan_queued_manifest_list_multiarch_latest.json"),
    )
    _store_recorded(
        repo,
        "repository_buynlarge_multiarch_manifest_child_sha256-98fab773a1e8.json",
        _recorded_scan("secscan_scanned_multiarch_amd64_vulns.json"),
    )
    _store(
        repo,
        MULTIARCH_ARM64,
        _schema2_image(MULTIARCH_ARM64, 87),
        _recorded_scan("secscan_layer_too_large_multiarch_arm64.json"),
    )
    for row in repo.rows:
        if row.manifest_digest not in repo.manifests:
            # Images only dead rows point at: scanned long ago, nothing found.
            parts = _schema2_image(row.manifest_digest, row.size or 0)
            layers = [layer["blob_digest"] for layer in parts.layers or []]
            report = scanned_report(row.manifest_digest, layers, packages=12, vulnerabilities=0)
            _store(repo, row.manifest_digest, parts, Scan("scanned", report))


def _publicrepo(repo: StoredRepository) -> None:
    """public/publicrepo: one recorded tag, manifest and (queued) scan."""
    repo.rows = _recorded_rows("notoken_repository_public_publicrepo_tag.json")
    _store_recorded(
        repo,
        "notoken_repository_public_publicrepo_manifest.json",
        _recorded_scan("notoken_repository_public_publicrepo_manifest_security.json"),
    )


def _superwide(repo: StoredRepository) -> None:
    """devtable/superwide: the recorded first page (latest18, latest17) plus latest16..0."""
    rows = _recorded_rows("repository_devtable_superwide_tag_limit-2_page-1_active.json")
    oldest_recorded = rows[-1]
    for index in range(16, -1, -1):
        name = f"latest{index}"
        digest = fake_digest(f"{repo.path}:{name}")
        rows.append(TagRow(name, oldest_recorded.start_ms - (17 - index), digest, 46))
        _store(repo, digest, _schema1_image(repo, name, 2), Scan("queued"))
    for row in rows[:2]:
        _store(repo, row.manifest_digest, _schema1_image(repo, row.name, 2), Scan("queued"))
    repo.rows = rows


def _autoprunerepo(repo: StoredRepository) -> None:
    """testorgforautoprune/autoprunerepo: one synthesized schema-1 tag, not scanned yet."""
    digest = fake_digest(f"{repo.path}:latest")
    repo.rows = [TagRow("latest", PUSH_TS * 1000, digest, 92)]
    _store(repo, digest, _schema1_image(repo, "latest", 4), Scan("queued"))

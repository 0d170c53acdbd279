"""The fewest requests the Quay API allows for reading organizations of a registry whole.

Benchmarks and tests compare what a sync sent against this count.
"""

from __future__ import annotations

import math

from .model import Registry, Repository

#: Rows per page of the repository listing (fixed by Quay) and of the tag listing (at most).
PAGE = 100


def minimum_requests(registry: Registry, organizations: list[str], now: float) -> int:
    """Count the requests the API needs at least to read these organizations whole."""
    total = 2  # /user/ (token check and user stream) and /discovery (is there a scanner?)
    for name in organizations:
        org = registry.orgs[name]
        repositories = registry.namespace_repositories(name)
        total += 3 + len(org.teams)  # detail, members, robots, each team's members
        total += max(1, math.ceil(len(repositories) / PAGE))
        total += sum(repository_requests(repository, now) for repository in repositories)
    return total


def repository_requests(repository: Repository, now: float) -> int:
    """Count a repository's tag pages plus a manifest and a security report per digest."""
    alive = repository.alive_rows(now)
    digests = {row.manifest_digest for row in alive}
    for row in alive:
        digests.update(child for child, present in row.children if present)
    return max(1, math.ceil(len(alive) / PAGE)) + 2 * len(digests)

"""What is stored: repositories, their active tags, and the manifests those tags point at."""

from __future__ import annotations

import json
import typing as t

from typing_extensions import override

from tap_quay import schemas
from tap_quay.client import POSITION, QuayStream
from tap_quay.errors import PagingError, ResourceUnavailable
from tap_quay.pagination import RepositoryCursorPaginator, TagPagePaginator, says_more
from tap_quay.streams.access import OrganizationsStream
from tap_quay.timestamps import convert_fields

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

    from tap_quay.transport import Order

#: Digest → the list's ``child_manifests_presence`` (None for a single image).
TaggedDigests = dict[str, dict[str, bool] | None]

SECURITY_PATH = "/repository/{namespace}/{repository}/manifest/{digest}/security"
SECURITY_QUERY = "?vulnerabilities=true"
SECURITY_OPERATION = "getRepoManifestSecurity"


class RepositoriesStream(QuayStream):
    """Repositories of each organization, every page of the ``next_page`` cursor."""

    name = "repositories"
    parent_stream_type = OrganizationsStream
    path = "/repository"
    primary_keys = ("namespace", "name")
    schema = schemas.REPOSITORY
    records_key = "repositories"
    resource = "repositories of namespace"

    _seen: set[str]
    _context: Context
    _page = 0

    @override
    def get_url_params(self, context: Context | None, next_page_token: str | None) -> Record:
        # public=true adds the namespace's public repositories the user has no grant on.
        params = {
            "namespace": (context or {})["organization"],
            "public": "true",
            "last_modified": "true",
            "popularity": "true",
        }
        if next_page_token:
            params["next_page"] = next_page_token
        return params

    @override
    def get_new_paginator(self) -> RepositoryCursorPaginator:
        return RepositoryCursorPaginator(self.response_json)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        self._seen = set()
        self._context = context or {}
        self._page = 0
        yield from super().get_records(context)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[Record]:
        rows = list(super().parse_response(response))
        names = {str(row.get("name")) for row in rows}
        # An expired or rejected cursor makes Quay start again at page 1.
        if names & self._seen:
            raise PagingError(
                "the repository listing returned repositories already read (Quay restarts "
                "at page 1 when it does not accept its own cursor); stopped paging there"
            )
        self._seen |= names
        page = self.page_order(self._page)
        for index, row in enumerate(rows):
            row[POSITION] = (*page, index)
        self.prefetch_page(rows, self.response_json(response).get("next_page"))
        self._page += 1
        return rows

    def prefetch_page(self, rows: list[Record], cursor: str | None) -> None:
        """Fetch ahead each repository's first tag page, and the next repository page."""
        tags = t.cast("TagsStream", self.quay.streams["tags"])
        manifests = t.cast("ManifestsStream", self.quay.streams["manifests"])
        if tags.wanted or manifests.wanted:  # manifests need the tag listing too
            for row in rows:
                context = self.get_child_context(row, self._context)
                tags.prefetch_pages((*row[POSITION], tags.rank), context)
        if cursor:
            self.prefetch(self.page_order(self._page + 1), self._context, page=cursor)

    @override
    def transform(self, row: Record) -> Record:
        return convert_fields(row, epoch=("last_modified",))

    @override
    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return {"namespace": record["namespace"], "repository": record["name"]}


class TagsStream(QuayStream):
    """Active tags of each repository, page by page until ``has_additional`` is false."""

    name = "tags"
    parent_stream_type = RepositoriesStream
    path = "/repository/{namespace}/{repository}/tag/"
    primary_keys = ("namespace", "repository", "name")
    schema = schemas.TAG
    records_key = "tags"
    parent_keys = ("namespace", "repository")
    resource = "tags of repository"

    _digests_of: tuple[str, str] | None = None
    _digests: TaggedDigests
    _names: set[str]
    _context: Context
    _page = 1

    @override
    def get_url_params(self, context: Context | None, next_page_token: int | None) -> Record:
        return {"onlyActiveTags": "true", "limit": 100, "page": next_page_token or 1}

    @override
    def get_new_paginator(self) -> TagPagePaginator:
        return TagPagePaginator(self.response_json)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        self._context = context = context or {}
        self._digests_of = (context["namespace"], context["repository"])
        self._digests = {}
        self._names = set()
        self._page = 1
        yield from super().get_records(context)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[Record]:
        rows = list(super().parse_response(response))
        # Offset paging repeats rows when a tag is pushed mid-walk; keep the first copy.
        fresh = [row for row in rows if row.get("name") not in self._names]
        more = says_more(self.response_json(response))
        if rows and not fresh:
            raise PagingError("a tag page repeated tags already read; stopped paging there")
        if more and not rows:  # Quay reads one row past the page to say there is more
            raise PagingError("an empty tag page said more tags follow; stopped paging there")
        for row in fresh:
            self._names.add(row["name"])
            presence = row.get("child_manifests_presence") if row.get("is_manifest_list") else None
            self._digests.setdefault(row["manifest_digest"], presence or None)
        if more:
            self.prefetch(self.page_order(self._page), self._context, page=self._page + 1)
        self._page += 1
        return fresh

    def prefetch_pages(self, listing: Order, context: Context, page: int = 1) -> None:
        """Fetch ahead a tag page and, once it says there is more, the next one."""

        def follow(response: requests.Response) -> None:
            body = response.json()
            if body.get("tags") and says_more(body):  # an empty page is an error, not more
                self.prefetch_pages(listing, context, page + 1)

        self.prefetch((*listing, page - 1), context, page=page, follow=follow)

    def tagged_digests(self, context: Context) -> TaggedDigests:
        """Return the digests the repository's active tags point at, listing them if needed."""
        if self._digests_of != (context["namespace"], context["repository"]):
            for _ in self.get_records(context):
                pass
        return self._digests

    @override
    def transform(self, row: Record) -> Record:
        return convert_fields(
            row, rfc2822=("last_modified", "expiration"), epoch=("start_ts", "end_ts")
        )


class ManifestsStream(QuayStream):
    """One record per distinct digest a repository's tags reach, manifest-list children included.

    Each record carries the image's ``security_status``; the security report it read is
    held for the two security streams, which run right after it for that one manifest.
    """

    name = "manifests"
    parent_stream_type = RepositoriesStream
    path = "/repository/{namespace}/{repository}/manifest/{digest}"
    primary_keys = ("namespace", "repository", "digest")
    schema = schemas.MANIFEST
    parent_keys = ("namespace", "repository")
    resource = "manifest"

    _report: tuple[str, list[Record]] = ("", [])
    _scanner_advertised: bool | None = None

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        context = context or {}
        tags = t.cast("TagsStream", self.quay.streams["tags"])
        digests = tags.tagged_digests(context)
        # Lists first, so a child that is also tagged is read as the list's child.
        ordered = sorted(digests, key=lambda digest: digests[digest] is None)
        walk = (*self.parent.position, self.rank)
        for index, digest in enumerate(ordered):
            self.prefetch_manifest((*walk, index), {**context, "digest": digest})
        done: set[str] = set()
        for index, digest in enumerate(ordered):
            if digest not in done:
                yield from self.read_manifest(
                    context, digest, digests[digest], done, (*walk, index)
                )

    def prefetch_manifest(self, order: Order, manifest_context: Context) -> None:
        """Fetch ahead a manifest and, if wanted, its security report."""
        self.prefetch((*order, 0), manifest_context)
        if self.collects_security() and self.scanner_advertised():
            self.prefetch((*order, 1), manifest_context, path=SECURITY_PATH + SECURITY_QUERY)

    def read_manifest(
        self,
        context: Context,
        digest: str,
        presence: dict[str, bool] | None,
        done: set[str],
        order: Order,
        parent_digest: str | None = None,
        platform: Record | None = None,
    ) -> t.Iterable[Record]:
        """Yield one manifest and, for a list, each child that Quay holds."""
        done.add(digest)
        manifest_context = {**context, "digest": digest}
        for manifest in super().get_records(manifest_context):
            if manifest.get("digest") != digest:
                where = f"manifest {context['namespace']}/{context['repository']}@{digest}"
                self.quay.problems.fail(self.name, where, "the answer names another digest")
                return
            manifest["parent_digest"] = parent_digest
            manifest["platform"] = platform
            manifest["security_status"] = self.read_security_report(manifest_context)
            # Children marked absent were never pulled into a mirror: Quay answers 404.
            children = [
                entry
                for entry in list_entries(manifest)
                if entry.get("digest") not in done and (presence or {}).get(entry["digest"], True)
            ]
            for index, entry in enumerate(children):
                self.prefetch_manifest((*order, 2, index), {**context, "digest": entry["digest"]})
            yield manifest
            for index, entry in enumerate(children):
                if entry["digest"] not in done:
                    yield from self.read_manifest(
                        context,
                        entry["digest"],
                        None,
                        done,
                        (*order, 2, index),
                        digest,
                        entry.get("platform"),
                    )

    def read_security_report(self, manifest_context: Context) -> str:
        """Read the image's security report and return its scan status."""
        self._report = (manifest_context["digest"], [])
        if not self.collects_security():
            return "not_requested"
        if not self.scanner_advertised():
            return "no_scanner"
        try:
            report = self.fetch_json(manifest_context, SECURITY_PATH + SECURITY_QUERY)
        except ResourceUnavailable as gap:
            if gap.status == 404:
                return "no_scanner"
            self.quay.problems.skip(
                self.name, gap.status, f"security report {gap.path}", "not visible to this token"
            )
            return "unavailable"
        if report is None:
            return "unavailable"
        status = report.get("status")
        packages = report_packages(report)
        if packages is None:
            where = f"security report of {manifest_context['digest']}"
            self.quay.problems.fail(self.name, where, "status scanned but no package list")
            return "unavailable"
        self._report = (manifest_context["digest"], packages)
        return str(status or "unavailable")

    def collects_security(self) -> bool:
        """Tell whether security reports are wanted at all in this run."""
        wanted = any(child.selected for child in self.child_streams)
        return wanted and bool(self.config.get("collect_vulnerabilities", True))

    def scanner_advertised(self) -> bool:
        """Ask the API description once whether the security endpoint exists."""
        if self._scanner_advertised is None:
            try:
                # Only an optimisation: without an answer, security is asked per image.
                discovery = self.fetch_json({}, "/discovery", optional=True)
            except ResourceUnavailable:
                discovery = None
            self._scanner_advertised = discovery is None or advertises_security(discovery)
        return self._scanner_advertised

    def features_of(self, digest: str) -> list[Record]:
        """Return the packages of the report just read, if it belongs to ``digest``."""
        report_digest, features = self._report
        return features if report_digest == digest else []

    @override
    def transform(self, row: Record) -> Record:
        for layer in row.get("layers") or []:
            convert_fields(layer, rfc2822=("created_datetime",))
        return row

    @override
    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> t.Iterable[Context | None]:
        if self.features_of(record["digest"]):
            yield {
                "namespace": record["namespace"],
                "repository": record["repository"],
                "manifest_digest": record["digest"],
            }


def list_entries(manifest: Record) -> list[Record]:
    """Return the ``manifests`` entries of a manifest list's raw JSON, or nothing."""
    if not manifest.get("is_manifest_list"):
        return []
    try:
        entries = json.loads(manifest.get("manifest_data") or "{}").get("manifests")
    except (ValueError, AttributeError):
        return []
    return [entry for entry in entries or [] if isinstance(entry, dict) and entry.get("digest")]


def report_packages(report: Record) -> list[Record] | None:
    """Return a security report's packages; None when a scanned report lacks a proper list.

    Only ``scanned`` reports carry data. A scanned report without a list of package objects,
    each with a list of finding objects, would read as a clean image, so it is refused.
    """
    if report.get("status") != "scanned":
        return []
    layer = (report.get("data") or {}).get("Layer") or {}
    packages = layer.get("Features") if isinstance(layer, dict) else None
    if not isinstance(packages, list) or not all(
        isinstance(package, dict)
        and isinstance(package.get("Vulnerabilities") or [], list)
        and all(isinstance(finding, dict) for finding in package.get("Vulnerabilities") or [])
        for package in packages
    ):
        return None
    return packages


def advertises_security(discovery: Record) -> bool:
    """Tell whether an API description lists the manifest security operation.

    A description without any paths proves nothing, so it counts as advertising it.
    """
    paths = discovery.get("paths")
    if not isinstance(paths, dict) or not paths:
        return True
    return any(
        isinstance(operation, dict) and operation.get("operationId") == SECURITY_OPERATION
        for methods in paths.values()
        if isinstance(methods, dict)
        for operation in methods.values()
    )

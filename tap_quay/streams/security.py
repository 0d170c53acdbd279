"""What is inside each image: its packages and their vulnerability findings.

Both streams read the one security report the manifests stream fetched for the image, so
each report is requested once and held only while its manifest is being written.
"""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_quay import schemas
from tap_quay.client import QuayStream
from tap_quay.streams.images import ManifestsStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record

MANIFEST_KEYS = ("namespace", "repository", "manifest_digest")


class SecurityReportStream(QuayStream):
    """A stream of rows cut from the security report of one manifest."""

    parent_stream_type = ManifestsStream
    parent_keys = MANIFEST_KEYS

    def packages(self, context: Context | None) -> list[Record]:
        """Return the packages (Clair "features") of the manifest in ``context``."""
        manifests = t.cast("ManifestsStream", self.quay.streams["manifests"])
        return manifests.features_of((context or {})["manifest_digest"])


class ManifestPackagesStream(SecurityReportStream):
    """One row per package found in an image (its SBOM)."""

    name = "manifest_packages"
    primary_keys = (*MANIFEST_KEYS, "package_index")
    schema = schemas.MANIFEST_PACKAGE

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        for index, package in enumerate(self.packages(context)):
            fields = {key: value for key, value in package.items() if key != "Vulnerabilities"}
            yield {"package_index": index, **fields}


class ManifestVulnerabilitiesStream(SecurityReportStream):
    """One row per vulnerability finding per package of an image."""

    name = "manifest_vulnerabilities"
    primary_keys = (*MANIFEST_KEYS, "package_index", "vulnerability_index")
    schema = schemas.MANIFEST_VULNERABILITY

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        for package_index, package in enumerate(self.packages(context)):
            for index, finding in enumerate(package.get("Vulnerabilities") or []):
                yield {
                    "package_index": package_index,
                    "vulnerability_index": index,
                    "package_name": package.get("Name"),
                    "package_version": package.get("Version"),
                    **finding,
                }

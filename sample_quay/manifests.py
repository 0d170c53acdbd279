"""Build manifests in the shapes Quay stores and serves (schema 1, schema 2, OCI)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .model import Json
from .views import format_date

# Metadata-only build steps (CMD, ENV...) show up in `layers` with this blob.
EMPTY_LAYER_DIGEST = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
EMPTY_LAYER_SIZE = 32

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass(frozen=True)
class Layer:
    """One build step: a blob (or the empty placeholder) and how it was made."""

    digest: str
    size: int
    command: str | None = None
    created: int | None = None


@dataclass(frozen=True)
class Platform:
    """A child of a manifest list: its digest, byte size and platform."""

    digest: str
    size: int
    architecture: str
    variant: str | None = None


@dataclass(frozen=True)
class ManifestParts:
    """Everything of a manifest view except its digest."""

    data: str
    config_media_type: str | None
    layers: list[Json] | None
    compressed_size: int


def fake_digest(seed: str) -> str:
    """Make a stable sha256 digest for a blob we never store."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def content_digest(data: str) -> str:
    """Return the digest of manifest bytes, as a registry computes it."""
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def _pretty(document: Json) -> str:
    """Serialize like the recorded manifests (pretty-printed, 3-space indent)."""
    return json.dumps(document, indent=3)


def _layer_view(index: int, layer: Layer, with_history: bool) -> Json:
    """Render one entry of a manifest's `layers` list."""
    command = [layer.command] if with_history and layer.command else None
    created = format_date(layer.created) if with_history and layer.created else None
    return {
        "index": index,
        "compressed_size": layer.size,
        "is_remote": False,
        "urls": None,
        "command": command,
        "comment": None,
        "author": None,
        "blob_digest": layer.digest,
        "created_datetime": created,
    }


def _real_size(layers: list[Layer]) -> int:
    """Sum the blob sizes, leaving out metadata-only placeholder steps."""
    return sum(layer.size for layer in layers if layer.digest != EMPTY_LAYER_DIGEST)


def schema1(repo_path: str, tag: str, layers: list[Layer]) -> ManifestParts:
    """Build a Docker schema-1 manifest; Quay shows no commands or dates for it."""
    ids = [fake_digest(f"{repo_path}:{tag}:v1:{i}")[7:31] for i in range(len(layers))]
    history = []
    for i in reversed(range(len(layers))):
        v1: Json = {"id": ids[i], "Size": layers[i].size}
        if i > 0:
            v1["parent"] = ids[i - 1]
        history.append({"v1Compatibility": json.dumps(v1)})
    document = {
        "tag": tag,
        "name": repo_path,
        "architecture": "amd64",
        "schemaVersion": 1,
        "history": history,
        "fsLayers": [{"blobSum": layer.digest} for layer in reversed(layers)],
    }
    views = [_layer_view(i, layer, with_history=False) for i, layer in enumerate(layers)]
    return ManifestParts(_pretty(document), None, views, _real_size(layers))


def schema2(layers: list[Layer], config_seed: str) -> ManifestParts:
    """Build a Docker schema-2 image; `layers` is the config history, placeholders included."""
    blobs = [layer for layer in layers if layer.digest != EMPTY_LAYER_DIGEST]
    document = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "size": 400 + len(layers) * 80,
            "digest": fake_digest(f"config:{config_seed}"),
        },
        "layers": [
            {"mediaType": DOCKER_LAYER, "size": blob.size, "digest": blob.digest} for blob in blobs
        ],
    }
    views = [_layer_view(i, layer, with_history=True) for i, layer in enumerate(layers)]
    return ManifestParts(_pretty(document), DOCKER_CONFIG, views, _real_size(layers))


def helm_chart(chart: Layer, config_seed: str) -> ManifestParts:
    """Build an OCI artifact (a Helm chart): blobs listed directly, no history."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "size": 117, "digest": fake_digest(config_seed)},
        "layers": [{"mediaType": HELM_CHART, "size": chart.size, "digest": chart.digest}],
    }
    views = [_layer_view(0, chart, with_history=False)]
    return ManifestParts(_pretty(document), HELM_CONFIG, views, chart.size)


def manifest_list(children: list[Platform]) -> ManifestParts:
    """Build a Docker manifest list: no layers, zero size, no config type."""
    entries = []
    for child in children:
        platform = {"architecture": child.architecture, "os": "linux"}
        if child.variant:
            platform["variant"] = child.variant
        entries.append(
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": child.digest,
                "size": child.size,
                "platform": platform,
            }
        )
    document = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}
    return ManifestParts(_pretty(document), None, None, 0)


def manifest_view(digest: str, parts: ManifestParts) -> Json:
    """Render GET /manifest/{digest}."""
    return {
        "digest": digest,
        "is_manifest_list": parts.layers is None,
        "manifest_data": parts.data,
        "config_media_type": parts.config_media_type,
        "layers_compressed_size": parts.compressed_size,
        "layers": parts.layers,
    }

"""JSON schemas of the eleven streams, with types and nullability as Quay returns them.

Key fields are required; every other field is optional because Quay leaves many keys out
depending on server features and the caller's role. A type admits null only where Quay
can send null.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def string() -> Schema:
    """Return a string that is never null."""
    return {"type": "string"}


def integer() -> Schema:
    """Return an integer that is never null."""
    return {"type": "integer"}


def number() -> Schema:
    """Return a number that is never null."""
    return {"type": "number"}


def boolean() -> Schema:
    """Return a boolean that is never null."""
    return {"type": "boolean"}


def timestamp() -> Schema:
    """Return an RFC 3339 UTC date-time string (converted from Quay's formats)."""
    return {"type": "string", "format": "date-time"}


def array(items: Schema) -> Schema:
    """Return an array of ``items``."""
    return {"type": "array", "items": items}


def obj(**properties: Schema) -> Schema:
    """Return an object with the given properties."""
    return {"type": "object", "properties": properties}


def nullable(schema: Schema) -> Schema:
    """Return ``schema`` that also admits null."""
    kind = schema["type"]
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"]}


def record(keys: tuple[str, ...], **properties: Schema) -> Schema:
    """Return a stream schema whose key fields are required."""
    return {"type": "object", "properties": properties, "required": list(keys)}


AVATAR = obj(name=string(), hash=string(), color=string(), kind=string())
NAMED_TEAM = obj(name=string(), avatar=AVATAR)
QUOTAS = array(
    obj(
        id=integer(),
        limit_bytes=integer(),
        limits=array(obj(id=integer(), type=string(), limit_percent=integer())),
    )
)
NAMESPACE_QUOTA_REPORT = obj(
    quota_bytes=integer(),
    configured_quota=nullable(integer()),
    running_backfill=string(),
    backfill_status=string(),
)

USER = record(
    ("username",),
    username=string(),
    anonymous=boolean(),
    avatar=AVATAR,
    organizations=array(
        obj(
            name=string(),
            avatar=AVATAR,
            can_create_repo=boolean(),
            public=boolean(),
            is_org_admin=boolean(),
            preferred_namespace=boolean(),
        )
    ),
    can_create_repo=boolean(),
    is_me=boolean(),
    verified=boolean(),
    email=string(),
    logins=array(obj(service=string(), service_identifier=string(), metadata=obj())),
    invoice_email=boolean(),
    invoice_email_address=nullable(string()),
    preferred_namespace=boolean(),
    tag_expiration_s=integer(),
    prompts=array(string()),
    company=nullable(string()),
    family_name=nullable(string()),
    given_name=nullable(string()),
    location=nullable(string()),
    is_free_account=boolean(),
    has_password_set=boolean(),
    quotas=QUOTAS,
    quota_report=NAMESPACE_QUOTA_REPORT,
    super_user=boolean(),
    global_readonly_super_user=boolean(),
)

ORGANIZATION = record(
    ("name",),
    name=string(),
    email=string(),
    avatar=AVATAR,
    is_admin=boolean(),
    is_member=boolean(),
    ordered_teams=array(string()),
    invoice_email=boolean(),
    invoice_email_address=nullable(string()),
    tag_expiration_s=integer(),
    is_free_account=boolean(),
    quotas=QUOTAS,
    quota_report=NAMESPACE_QUOTA_REPORT,
)

ORGANIZATION_MEMBER = record(
    ("organization", "name"),
    organization=string(),
    name=string(),
    kind=string(),
    avatar=AVATAR,
    teams=array(NAMED_TEAM),
    repositories=array(string()),
)

ROBOT_ACCOUNT = record(
    ("name",),
    organization=string(),
    name=string(),
    created=nullable(timestamp()),
    last_accessed=nullable(timestamp()),
    description=nullable(string()),
    teams=array(NAMED_TEAM),
    repositories=array(string()),
)

TEAM = record(
    ("organization", "name"),
    organization=string(),
    name=string(),
    description=string(),
    role=string(),
    avatar=AVATAR,
    can_view=boolean(),
    repo_count=integer(),
    member_count=integer(),
    is_synced=boolean(),
)

TEAM_MEMBER = record(
    ("organization", "team", "name"),
    organization=string(),
    team=string(),
    name=string(),
    kind=string(),
    is_robot=boolean(),
    avatar=AVATAR,
    invited=boolean(),
)

REPOSITORY = record(
    ("namespace", "name"),
    namespace=string(),
    name=string(),
    description=nullable(string()),
    is_public=boolean(),
    kind=string(),
    state=nullable(string()),
    is_starred=boolean(),
    last_modified=nullable(timestamp()),
    popularity=number(),
    quota_report=obj(quota_bytes=integer(), configured_quota=nullable(integer())),
)

TAG = record(
    ("namespace", "repository", "name"),
    namespace=string(),
    repository=string(),
    name=string(),
    reversion=boolean(),
    immutable=boolean(),
    start_ts=timestamp(),
    end_ts=timestamp(),
    manifest_digest=string(),
    is_manifest_list=boolean(),
    size=nullable(integer()),
    last_modified=timestamp(),
    expiration=timestamp(),
    is_sparse=boolean(),
    child_manifest_count=integer(),
    present_child_count=integer(),
    child_manifests_presence={"type": "object", "additionalProperties": boolean()},
)

LAYER = obj(
    index=integer(),
    compressed_size=nullable(integer()),
    is_remote=boolean(),
    urls=nullable(array(string())),
    command=nullable(array(string())),
    comment=nullable(string()),
    author=nullable(string()),
    blob_digest=string(),
    created_datetime=nullable(timestamp()),
)

PLATFORM = {
    **obj(
        architecture=string(),
        os=string(),
        variant=string(),
        features=array(string()),
        **{"os.version": string(), "os.features": array(string())},
    ),
    "additionalProperties": True,
}

MANIFEST = record(
    ("namespace", "repository", "digest"),
    namespace=string(),
    repository=string(),
    digest=string(),
    is_manifest_list=boolean(),
    manifest_data=string(),
    config_media_type=nullable(string()),
    layers_compressed_size=nullable(integer()),
    layers=nullable(array(LAYER)),
    parent_digest=nullable(string()),
    platform=nullable(PLATFORM),
    security_status=string(),
)

MANIFEST_PACKAGE = record(
    ("namespace", "repository", "manifest_digest", "package_index"),
    namespace=string(),
    repository=string(),
    manifest_digest=string(),
    package_index=integer(),
    Name=string(),
    Version=string(),
    AddedBy=string(),
    VersionFormat=string(),
    NamespaceName=string(),
    BaseScores=array(number()),
    CVEIds=array(string()),
)

MANIFEST_VULNERABILITY = record(
    ("namespace", "repository", "manifest_digest", "package_index", "vulnerability_index"),
    namespace=string(),
    repository=string(),
    manifest_digest=string(),
    package_index=integer(),
    vulnerability_index=integer(),
    package_name=string(),
    package_version=string(),
    Name=string(),
    Severity=string(),
    NamespaceName=string(),
    Link=string(),
    FixedBy=string(),
    Description=string(),
    Metadata=obj(
        UpdatedBy=string(),
        RepoName=nullable(string()),
        RepoLink=nullable(string()),
        DistroName=nullable(string()),
        DistroVersion=nullable(string()),
        NVD=nullable(obj(CVSSv3=obj(Vectors=string(), Score={"type": ["number", "string"]}))),
    ),
)

"""Routes and endpoint handlers of the Quay API paths the tap reads."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from .auth import Identity
from .model import Json, Registry, Repository, Robot, TagRow
from .paging import REPOSITORIES_PER_PAGE, PageTokens
from .permissions import (
    administers_namespace,
    can_read_repo,
    can_view_team,
    is_org_admin,
    lists_repository,
    org_role,
)
from .recorded import body, downstream_detail
from .responses import (
    ApiError,
    MessageError,
    Request,
    Response,
    abort,
    invalid_request,
    json_response,
    not_found,
    redirect,
)
from .views import (
    members_view,
    org_view,
    repository_detail,
    repository_row,
    robot_view,
    tag_view,
    team_members_view,
    user_view,
)

SCANNER_MODES = ("on", "off", "down")

# Only these values are false for Quay's `truthy_bool`; anything else is true.
_FALSE_VALUES = ("false", "False", "FALSE", "0", "null", "")

# Flask-RESTful answers an unparsable integer with the parameter's help text.
_PAGE_HELP = "Page index for the results. Default 1."
_LIMIT_HELP = "Limit to the number of results to return per page. Max 100."
_ROBOT_LIMIT_HELP = "If specified, the number of robots to return."

_BROWSER = re.compile(r"\b(?:Chrome|Firefox|Safari|Edg|OPR|Trident)/")
_BROWSER_MESSAGE = (
    "API calls must be invoked with an X-Requested-With header if called from a browser"
)

_NAME = r"[^/]+"
_REPO = r"[^/]+/[^/]+(?:/[^/]+)*"
_DIGEST = r"[A-Za-z0-9_+.-]+:[A-Fa-f0-9]+"


@dataclass
class Context:
    """What a handler needs to answer one request."""

    registry: Registry
    identity: Identity
    request: Request
    base_url: str
    scanner: str
    public_host: str
    pager: PageTokens
    now: float
    params: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        """Parse the query string; a repeated parameter keeps its first value."""
        parsed = parse_qs(self.request.query, keep_blank_values=True)
        self.params = {name: values[0] for name, values in parsed.items()}

    def flag(self, name: str, default: bool = False) -> bool:
        """Read a boolean query parameter with Quay's truthy_bool rule."""
        value = self.params.get(name)
        return default if value is None else value not in _FALSE_VALUES

    def integer(self, name: str, default: int, help_text: str) -> int:
        """Read an integer query parameter; a non-integer is Flask-RESTful's 400."""
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise MessageError(400, {name: help_text}) from None


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    """A path pattern (relative to /api/v1/) and its handler."""

    pattern: re.Pattern[str]
    handler: Handler
    basic_auth: bool = False


def unauthorized(identity: Identity) -> ApiError:
    """Build the permission failure: 401 without a signed-in user, 403 with one."""
    if identity.is_anonymous:
        return ApiError(401, "invalid_token", "Requires authentication")
    return ApiError(403, "insufficient_scope", "Unauthorized")


def find_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """Match a decoded path against the API routes, in Werkzeug's precedence."""
    if not path.startswith("/api/v1/"):
        return None
    rest = path[len("/api/v1/") :]
    for route in ROUTES:
        match = route.pattern.fullmatch(rest)
        if match:
            return route, match.groupdict()
    return None


def answer(ctx: Context, route: Route, groups: dict[str, str]) -> Response:
    """Run a handler and turn Quay-style errors into responses."""
    if _browser_without_xhr(ctx.request):
        return abort(400, _BROWSER_MESSAGE)
    try:
        return route.handler(ctx, **groups)
    except ApiError as error:
        return error.response(ctx.public_host)
    except MessageError as error:
        return error.response()


def _browser_without_xhr(request: Request) -> bool:
    """Tell whether a browser called the API without X-Requested-With (Quay refuses)."""
    agent = request.headers.get("User-Agent") or ""
    xhr = request.headers.get("X-Requested-With") == "XMLHttpRequest"
    return agent.startswith("Mozilla/") and _BROWSER.search(agent) is not None and not xhr


def add_slash(ctx: Context, **_: str) -> Response:
    """Redirect to the slash form of the URL, keeping the query (Werkzeug's 308)."""
    query = f"?{ctx.request.query}" if ctx.request.query else ""
    return redirect(f"{ctx.base_url}{ctx.request.raw_path}/{query}")


def current_user(ctx: Context) -> Response:
    """GET /user/: needs a signed-in user and the user:read scope."""
    if ctx.identity.is_anonymous or not ctx.identity.has_scope("user:read"):
        raise ApiError(401, "invalid_token", "Requires authentication", session_required=False)
    return json_response(user_view(ctx.registry, ctx.identity))


def discovery(ctx: Context) -> Response:
    """GET /discovery: the recorded Swagger document, minus security when it is off."""
    document = body("discovery_swagger.json")
    if ctx.scanner == "off":
        document = copy.deepcopy(document)
        del document["paths"]["/api/v1/repository/{repository}/manifest/{manifestref}/security"]
        document["tags"] = [tag for tag in document["tags"] if tag["name"] != "secscan"]
    return json_response(document)


def organization(ctx: Context, org: str) -> Response:
    """GET /organization/{org}: no permission check, the view depends on the caller."""
    found = ctx.registry.orgs.get(org)
    if found is None:
        raise not_found()
    return json_response(org_view(ctx.registry, found, ctx.identity))


def members(ctx: Context, org: str) -> Response:
    """GET /organization/{org}/members: admins only; permission before existence."""
    if not administers_namespace(ctx.registry, ctx.identity, org):
        raise unauthorized(ctx.identity)
    found = ctx.registry.orgs.get(org)
    if found is None:
        raise not_found()
    return json_response(members_view(ctx.registry, found))


def robots(ctx: Context, org: str) -> Response:
    """GET /organization/{org}/robots: members list; only admins get secrets."""
    found = ctx.registry.orgs.get(org)
    if found is not None and org_role(found, ctx.identity) is not None:
        listed, admin = found.robots, is_org_admin(found, ctx.identity)
    elif found is None and administers_namespace(ctx.registry, ctx.identity, org):
        # A user's own name lists that user's robots instead of failing.
        listed, admin = ctx.registry.user_robots.get(org, []), True
    else:
        raise unauthorized(ctx.identity)
    # `token` defaults to TRUE: an admin who does not say token=false gets secrets.
    token = admin and ctx.flag("token", default=True)
    permissions = admin and ctx.flag("permissions")
    limit = ctx.integer("limit", 0, _ROBOT_LIMIT_HELP)
    shown = _limit_robots(ctx.registry, listed, limit, permissions)
    views = [robot_view(ctx.registry, r, found, token, permissions) for r in shown]
    return json_response({"robots": views})


def _limit_robots(
    registry: Registry, listed: list[Robot], limit: int, permissions: bool
) -> list[Robot]:
    """Apply `limit` as Quay's SQL does: to robot x team x repository join rows."""
    if limit <= 0:
        return listed
    shown: list[Robot] = []
    rows = 0
    for robot in listed:
        if rows >= limit:
            break
        shown.append(robot)
        rows += _join_rows(registry, robot) if permissions else 1
    return shown


def _join_rows(registry: Registry, robot: Robot) -> int:
    """Count the rows a robot occupies in the permissions join."""
    namespace = robot.name.split("+", 1)[0]
    org = registry.orgs.get(namespace)
    teams = len(org.teams_of(robot.name)) if org else 0
    repos = sum(robot.name in r.user_grants for r in registry.namespace_repositories(namespace))
    return max(teams, 1) * max(repos, 1)


def team_members(ctx: Context, org: str, team: str) -> Response:
    """GET /organization/{org}/team/{team}/members: team members or admins."""
    found = ctx.registry.orgs.get(org)
    found_team = found.team(team) if found else None
    admin = administers_namespace(ctx.registry, ctx.identity, org)
    if not admin and not (found and found_team and can_view_team(found, found_team, ctx.identity)):
        raise unauthorized(ctx.identity)
    if found_team is None:
        raise not_found()
    pending = ctx.flag("includePending")
    return json_response(team_members_view(ctx.registry, found_team, admin, pending))


def repositories(ctx: Context) -> Response:
    """GET /repository: one namespace (or server-wide), 100 per page, cursor paging."""
    namespace = ctx.params.get("namespace", "")
    public, starred = ctx.flag("public"), ctx.flag("starred")
    if not (namespace or public or starred):
        raise invalid_request("namespace, starred or public are required for this API call")
    if ctx.params.get("repo_kind", "image") != "image":
        raise MessageError(400, "Unknown repository kind")
    if starred:
        return _starred_repositories(ctx)
    registry = ctx.registry
    candidates = registry.namespace_repositories(namespace) if namespace else registry.repositories
    visible = [
        repo
        for repo in candidates
        if (public and repo.is_public) or lists_repository(registry, ctx.identity, repo)
    ]
    start = ctx.pager.read(ctx.params.get("next_page"))
    remaining = [repo for repo in visible if start is None or repo.id >= start]
    result: dict[str, object] = {"repositories": _rows(ctx, remaining[:REPOSITORIES_PER_PAGE])}
    if len(remaining) > REPOSITORIES_PER_PAGE:
        result["next_page"] = ctx.pager.issue(remaining[REPOSITORIES_PER_PAGE].id)
    return json_response(result)


def _starred_repositories(ctx: Context) -> Response:
    """List starred repositories: ignores namespace, at most 99, never a next page."""
    if ctx.identity.is_anonymous:
        message = "The browser (or proxy) sent a request that this server could not understand."
        raise MessageError(400, message)
    starred = ctx.registry.starred.get(ctx.identity.username or "", set())
    repos = [repo for repo in ctx.registry.repositories if repo.path in starred]
    return json_response({"repositories": _rows(ctx, repos[:99])})


def _rows(ctx: Context, repos: list[Repository]) -> list[Json]:
    """Render listing rows with the optional fields the query asked for."""
    extras = {"last_modified": ctx.flag("last_modified"), "popularity": ctx.flag("popularity")}
    starred = ctx.registry.starred.get(ctx.identity.username or "", set())
    return [
        repository_row(repo, ctx.identity, repo.path in starred, extras, ctx.now) for repo in repos
    ]


def readable_repository(ctx: Context, path: str) -> Repository:
    """Return a repository the caller may read; permission is checked before existence."""
    repo = ctx.registry.repository(path)
    namespace = path.split("/", 1)[0]
    if not can_read_repo(ctx.registry, ctx.identity, namespace, repo):
        raise unauthorized(ctx.identity)
    if repo is None:
        raise not_found()
    return repo


def repository(ctx: Context, repo: str) -> Response:
    """GET /repository/{ns}/{repo}: also where unmatched repository URLs land."""
    found = readable_repository(ctx, repo)
    starred = found.path in ctx.registry.starred.get(ctx.identity.username or "", set())
    return json_response(repository_detail(ctx.registry, found, ctx.identity, starred, ctx.now))


def tags(ctx: Context, repo: str) -> Response:
    """GET /repository/{ns}/{repo}/tag/: offset paging over newest-first rows."""
    found = readable_repository(ctx, repo)
    page = max(ctx.integer("page", 1, _PAGE_HELP), 1)
    limit = min(max(ctx.integer("limit", 50, _LIMIT_HELP), 1), 100)
    rows = _filter_rows(ctx, found.tag_rows())
    offset = (page - 1) * limit
    shown = rows[offset : offset + limit]
    has_additional = len(rows) > offset + limit
    return json_response(
        {"tags": [tag_view(row) for row in shown], "page": page, "has_additional": has_additional}
    )


def _filter_rows(ctx: Context, rows: Sequence[TagRow]) -> list[TagRow]:
    """Apply onlyActiveTags, specificTag and filter_tag_name."""
    wanted = _name_filter(ctx.params.get("filter_tag_name", ""))
    specific = ctx.params.get("specificTag", "")
    only_active = ctx.flag("onlyActiveTags")
    return [
        row
        for row in rows
        if (not only_active or row.is_alive(ctx.now))
        and (not specific or row.name == specific)
        and wanted(row.name)
    ]


def _name_filter(expression: str) -> Callable[[str], bool]:
    """Build the filter_tag_name test: `eq:<name>` or `like:<substring>` (SQL LIKE)."""
    if not expression:
        return lambda _name: True
    operator, colon, operand = expression.partition(":")
    if not colon:
        raise MessageError(400, "Unsupported syntax for filter_tag_name. Use <op>:<name>.")
    if operator == "eq":
        return lambda name: name == operand
    if operator == "like":
        # LIKE wildcards: % is any run, _ one character; the match ignores case.
        parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in operand)
        pattern = re.compile(".*" + "".join(parts) + ".*", re.IGNORECASE | re.DOTALL)
        return lambda name: pattern.fullmatch(name) is not None
    return lambda _name: True


def manifest(ctx: Context, repo: str, digest: str) -> Response:
    """GET /manifest/{digest}: only digests an alive tag (or alive list) reaches."""
    found = readable_repository(ctx, repo)
    view = found.reachable_manifest(digest, ctx.now)
    if view is None:
        raise not_found()
    return json_response(view)


def security(ctx: Context, repo: str, digest: str) -> Response:
    """GET /manifest/{digest}/security: any stored manifest, alive or not."""
    if ctx.scanner == "off":
        # Without the scanner the route does not exist; the generic repository
        # route takes the whole rest of the path as a repository name.
        return repository(ctx, repo=f"{repo}/manifest/{digest}/security")
    found = readable_repository(ctx, repo)
    scan = found.scan(digest)
    if scan is None:
        raise not_found()
    if ctx.scanner == "down" and scan.status == "scanned":
        # Only finished scans need Clair to build the report.
        raise ApiError(520, "downstream_issue", downstream_detail(digest))
    return json_response({"status": scan.status, "data": scan.report})


def _route(pattern: str, handler: Handler, basic_auth: bool = False) -> Route:
    """Compile one route."""
    return Route(re.compile(pattern), handler, basic_auth)


ROUTES = (
    _route(r"user/", current_user),
    _route(r"user", add_slash),
    _route(r"discovery", discovery),
    _route(rf"organization/(?P<org>{_NAME})", organization),
    _route(rf"organization/(?P<org>{_NAME})/members", members),
    _route(rf"organization/(?P<org>{_NAME})/robots", robots),
    _route(rf"organization/(?P<org>{_NAME})/team/(?P<team>{_NAME})/members", team_members),
    _route(r"repository", repositories),
    _route(rf"repository/(?P<repo>{_REPO})/tag/", tags),
    _route(rf"repository/(?P<repo>{_REPO})/tag", add_slash),
    _route(
        rf"repository/(?P<repo>{_REPO})/manifest/(?P<digest>{_DIGEST})/security",
        security,
        basic_auth=True,
    ),
    _route(rf"repository/(?P<repo>{_REPO})/manifest/(?P<digest>{_DIGEST})", manifest),
    _route(rf"repository/(?P<repo>{_REPO})", repository),
)

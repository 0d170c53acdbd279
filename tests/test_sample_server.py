"""The sample Quay server answers like the recorded Quay and follows Quay's rules."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests

import sample_quay
from sample_quay import TOKENS, SampleQuay, ScaleSettings
from sample_quay.server import build_registry

DATA = Path(sample_quay.__file__).parent / "data"
RECORDINGS = sorted(path.name for path in DATA.glob("*.json"))
ROOT = Path(__file__).resolve().parent.parent
UNKNOWN_TOKEN = "no-such-token"

ORGREPO_LATEST = "sha256:997be13bf78e3b270c6d5eb5762482bdded36cbd9576ec7aeb035de9e36e1671"
ORGREPO_PROD = "sha256:5add2b6543fbc044d0185e4265abfaa99e27c0d9b290c53d892fa2919f006972"
MULTIARCH_LIST = "sha256:cb6902531bf3632d24b194fdce4f63a2e6f5fa63e9d67699e7c3233ca4148cce"
MULTIARCH_DEAD = "sha256:6890bba05546e270f51b92428b6d280c4a088471303d632ae1f3c6e7158e522d"
SMALL_SCALE = ScaleSettings(orgs=1, repos_per_org=2, active_tags=130, dead_tags=12)


@cache
def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def headers_for(label: str) -> dict[str, str]:
    """Return the Authorization header a recording's token label stands for."""
    if label == "none":
        return {}
    token = UNKNOWN_TOKEN if label == "bad" else TOKENS[label]
    return {"Authorization": f"Bearer {token}"}


def scanner_mode(name: str) -> str:
    """Tell which scanner set-up a recording was made with."""
    if name.startswith("noscanner_"):
        return "off"
    return "down" if name.startswith("secscan_down_") else "on"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, SampleQuay]]:
    started = {mode: SampleQuay(scanner=mode).start() for mode in ("on", "off", "down")}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(scope="module")
def server(servers: dict[str, SampleQuay]) -> SampleQuay:
    return servers["on"]


@pytest.fixture(scope="module")
def scaled() -> Iterator[SampleQuay]:
    with SampleQuay(scale=SMALL_SCALE) as started:
        yield started


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(
    http: requests.Session, server: SampleQuay, path: str, label: str = "full"
) -> requests.Response:
    return http.get(server.url + path, headers=headers_for(label), allow_redirects=False)


def replay(http: requests.Session, server: SampleQuay, name: str) -> requests.Response:
    """Send a recording's request; a recorded cursor is swapped for this server's own."""
    request = recorded(name)["request"]
    return get(http, server, _fresh_cursor(http, server, request["path"]), request["auth"])


def _fresh_cursor(http: requests.Session, server: SampleQuay, path: str) -> str:
    """Replace a real Quay's next_page token by the one this server issues in its place."""
    match = re.search(r"next_page=(gAAAA[^&]+)", path)
    if match is None:
        return path
    token = unquote(match.group(1))
    source = next(
        name
        for name in RECORDINGS
        if isinstance(recorded(name)["body"], dict)
        and recorded(name)["body"].get("next_page") == token
    )
    fresh = replay(http, server, source).json()["next_page"]
    return path.replace(match.group(1), quote(fresh, safe=""))


@pytest.mark.parametrize("name", RECORDINGS)
def test_recorded_exchange_is_reproduced(
    servers: dict[str, SampleQuay], http: requests.Session, name: str
) -> None:
    exchange = recorded(name)
    server = servers[scanner_mode(name)]

    response = replay(http, server, name)

    assert response.status_code == exchange["status"]
    assert response.headers["Content-Type"] == exchange["headers"]["Content-Type"]
    if response.status_code == 308:
        expected = server.url + exchange["request"]["path"] + "/"
        assert response.headers["Location"] == expected
        return
    body, expected_body = response.json(), exchange["body"]
    if isinstance(expected_body, dict) and "next_page" in expected_body:
        # Cursors are opaque and differ on every response; only their presence matters.
        expected_body = {k: v for k, v in expected_body.items() if k != "next_page"}
        assert body.pop("next_page")
    assert body == expected_body


def walk_repositories(
    http: requests.Session, server: SampleQuay, query: str, label: str = "full"
) -> list[list[str]]:
    """Follow next_page to the end; return the repository names of each page."""
    pages, cursor = [], ""
    for _ in range(10):
        body = get(http, server, f"/api/v1/repository?{query}{cursor}", label).json()
        pages.append([repo["name"] for repo in body["repositories"]])
        if "next_page" not in body:
            return pages
        cursor = "&next_page=" + quote(body["next_page"], safe="")
    raise AssertionError("the listing never ended")


def test_repositories_page_by_100_over_manyrepos(
    server: SampleQuay, http: requests.Session
) -> None:
    pages = walk_repositories(http, server, "namespace=manyrepos")

    assert [len(page) for page in pages] == [100, 100, 5]
    assert [name for page in pages for name in page] == [f"repo{i:03d}" for i in range(205)]


@pytest.mark.parametrize("cursor", ["garbage", "", "ALTERED"])
def test_unusable_cursor_restarts_at_page_one(
    server: SampleQuay, http: requests.Session, cursor: str
) -> None:
    first = get(http, server, "/api/v1/repository?namespace=manyrepos").json()
    if cursor == "ALTERED":
        token = first["next_page"]
        cursor = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]

    again = get(http, server, f"/api/v1/repository?namespace=manyrepos&next_page={cursor}")

    assert again.status_code == 200
    assert again.json()["repositories"] == first["repositories"]


def test_cursor_is_new_each_time_replayable_and_needs_url_encoding(
    server: SampleQuay, http: requests.Session
) -> None:
    first = get(http, server, "/api/v1/repository?namespace=manyrepos").json()["next_page"]
    second = get(http, server, "/api/v1/repository?namespace=manyrepos").json()["next_page"]
    path = "/api/v1/repository?namespace=manyrepos&next_page=" + quote(first, safe="")

    assert first != second
    assert first.endswith("=")
    for _ in range(2):
        assert get(http, server, path).json()["repositories"][0]["name"] == "repo100"


def test_anonymous_listing_needs_public_true(server: SampleQuay, http: requests.Session) -> None:
    hidden = get(http, server, "/api/v1/repository?namespace=manyrepos", "none").json()
    shown = get(http, server, "/api/v1/repository?namespace=manyrepos&public=true", "none")

    assert hidden == {"repositories": []}
    names = [repo["name"] for repo in shown.json()["repositories"]]
    assert names == ["repo000", "repo050", "repo100", "repo150", "repo200"]
    assert all("is_starred" not in repo for repo in shown.json()["repositories"])


def tag_pages(http: requests.Session, server: SampleQuay, repo: str, query: str) -> list[dict]:
    """Walk the tag listing page by page until has_additional is false."""
    pages = []
    for page in range(1, 20):
        path = f"/api/v1/repository/{repo}/tag/?page={page}&{query}"
        pages.append(get(http, server, path).json())
        if not pages[-1]["has_additional"]:
            return pages
    raise AssertionError("has_additional never became false")


def test_tags_of_a_large_generated_repository_span_pages(
    scaled: SampleQuay, http: requests.Session
) -> None:
    pages = tag_pages(http, scaled, "gen-org-000/app-0000", "limit=100&onlyActiveTags=true")
    history = tag_pages(http, scaled, "gen-org-000/app-0000", "limit=100")

    assert [len(page["tags"]) for page in pages] == [100, 30]
    assert [page["page"] for page in pages] == [1, 2]
    starts = [tag["start_ts"] for page in pages for tag in page["tags"]]
    assert starts == sorted(starts, reverse=True)
    rows = [tag for page in history for tag in page["tags"]]
    assert len(rows) == 130 + 12
    assert sum("end_ts" in tag and tag["end_ts"] < 4102444800 for tag in rows) == 12


def test_tag_limit_is_clamped_and_page_starts_at_one(
    scaled: SampleQuay, http: requests.Session
) -> None:
    path = "/api/v1/repository/gen-org-000/app-0000/tag/?onlyActiveTags=true"
    big = get(http, scaled, path + "&limit=500").json()
    tiny = get(http, scaled, path + "&limit=0&page=-3").json()
    default = get(http, scaled, path).json()

    assert len(big["tags"]) == 100
    assert (len(tiny["tags"]), tiny["page"]) == (1, 1)
    assert len(default["tags"]) == 50
    bad = get(http, scaled, path + "&limit=ten")
    assert bad.status_code == 400
    assert "limit" in bad.json()["message"]


def test_generated_manifests_hash_to_their_digest_and_lists_reach_children(
    scaled: SampleQuay, http: requests.Session
) -> None:
    base = "/api/v1/repository/gen-org-000/app-0000"
    tags = get(http, scaled, base + "/tag/?limit=100&onlyActiveTags=true").json()["tags"]
    listed = next(tag for tag in tags if tag["is_manifest_list"])

    manifest = get(http, scaled, f"{base}/manifest/{listed['manifest_digest']}").json()
    children = json.loads(manifest["manifest_data"])["manifests"]

    assert manifest["layers"] is None
    assert manifest["layers_compressed_size"] == 0
    assert manifest["config_media_type"] is None
    for child in children:
        answer = get(http, scaled, f"{base}/manifest/{child['digest']}").json()
        data = answer["manifest_data"].encode()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == child["digest"]
        assert child["platform"]["os"] == "linux"


def test_generated_registry_of_100k_tags_stays_small() -> None:
    scale = ScaleSettings(
        orgs=10, repos_per_org=100, active_tags=90, dead_tags=10, packages=100, vulnerabilities=20
    )
    tracemalloc.start()
    try:
        registry = build_registry(scale)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(registry.repositories) == 222 + 1000
    assert peak < 30 * 1024 * 1024


def test_robot_secrets_come_by_default_and_token_false_drops_them(
    server: SampleQuay, http: requests.Session
) -> None:
    def robots(query: str, label: str = "full") -> list[dict]:
        path = "/api/v1/organization/buynlarge/robots" + query
        return get(http, server, path, label).json()["robots"]

    assert all("token" in robot for robot in robots(""))
    assert all("token" in robot for robot in robots("?token=no"))
    assert not any("token" in robot for robot in robots("?token=false"))
    assert not any("token" in robot for robot in robots("?token=0"))
    assert not any("token" in robot for robot in robots("?token=true", "reader_full"))


@pytest.mark.parametrize(
    ("path", "label", "status"),
    [
        ("/api/v1/organization/buynlarge/members", "repo_read", 403),
        ("/api/v1/organization/buynlarge/members", "none", 401),
        ("/api/v1/organization/buynlarge/members", "expired", 401),
        ("/api/v1/organization/nosuchorg/team/owners/members", "full", 403),
        ("/api/v1/organization/buynlarge/team/nosuchteam/members", "reader_full", 403),
        ("/api/v1/organization/buynlarge/team/synced/members", "reader_full", 403),
        ("/api/v1/organization/devtable/members", "full", 404),
        ("/api/v1/organization/manyrepos/robots", "reader_full", 403),
        ("/api/v1/repository/buynlarge/anotherorgrepo/tag/", "repo_read", 200),
        ("/api/v1/repository/buynlarge/multiarch/tag/", "reader_full", 200),
        ("/api/v1/repository/buynlarge/nosuchrepo/tag/", "reader_full", 403),
        ("/api/v1/repository/buynlarge/nosuchrepo/tag/", "repo_read", 404),
        ("/api/v1/repository/manyrepos/repo000/tag/", "none", 200),
        ("/api/v1/repository/manyrepos/repo001/tag/", "none", 401),
        (f"/api/v1/repository/buynlarge/orgrepo/manifest/{ORGREPO_PROD}", "reader_full", 200),
        ("/api/v1/user/", "expired", 401),
    ],
)
def test_permission_is_checked_before_existence(
    server: SampleQuay, http: requests.Session, path: str, label: str, status: int
) -> None:
    assert get(http, server, path, label).status_code == status


def test_manifest_of_a_dead_tag_is_404_but_its_scan_answers(
    server: SampleQuay, http: requests.Session
) -> None:
    base = "/api/v1/repository/buynlarge/multiarch/manifest/" + MULTIARCH_DEAD

    assert get(http, server, base).status_code == 404
    assert get(http, server, base + "/security?vulnerabilities=true").json()["status"] == "scanned"


def scan_statuses(http: requests.Session, server: SampleQuay) -> dict[str, str]:
    """Return the security status of every digest the org repositories reference."""
    statuses = {}
    for repo in ("orgrepo", "anotherorgrepo", "multiarch"):
        base = f"/api/v1/repository/buynlarge/{repo}"
        for tag in get(http, server, base + "/tag/?limit=100").json()["tags"]:
            digests = [tag["manifest_digest"], *tag.get("child_manifests_presence", {})]
            for digest in digests:
                answer = get(http, server, f"{base}/manifest/{digest}/security")
                statuses[f"{repo}@{digest}"] = answer.json()["status"]
    return statuses


def test_every_scan_status_occurs_and_scanned_ones_carry_reports(
    server: SampleQuay, http: requests.Session
) -> None:
    statuses = scan_statuses(http, server)
    base = "/api/v1/repository/buynlarge/orgrepo/manifest/"
    report = get(http, server, base + ORGREPO_PROD + "/security").json()

    assert set(statuses.values()) == {
        "scanned",
        "queued",
        "failed",
        "unsupported",
        "manifest_layer_too_large",
    }
    assert statuses[f"multiarch@{MULTIARCH_LIST}"] == "queued"
    assert len(report["data"]["Layer"]["Features"]) == 188


def test_scanner_down_fails_only_finished_scans(
    servers: dict[str, SampleQuay], http: requests.Session
) -> None:
    statuses = scan_statuses(http, servers["on"])
    down = servers["down"]

    for key, status in statuses.items():
        repo, digest = key.split("@")
        path = f"/api/v1/repository/buynlarge/{repo}/manifest/{digest}/security"
        answer = get(http, down, path)
        expected = 520 if status == "scanned" else 200
        assert answer.status_code == expected, key
        if expected == 520:
            assert answer.json()["error_type"] == "downstream_issue"
            assert digest in answer.json()["detail"]


@pytest.mark.parametrize(("label", "status"), [("full", 404), ("reader_full", 403), ("none", 401)])
def test_scanner_off_hides_the_security_route(
    servers: dict[str, SampleQuay], http: requests.Session, label: str, status: int
) -> None:
    off = servers["off"]
    path = f"/api/v1/repository/buynlarge/orgrepo/manifest/{ORGREPO_PROD}/security"
    document = get(http, off, "/api/v1/discovery", label).json()

    assert get(http, off, path, label).status_code == status
    operations = {
        operation.get("operationId")
        for methods in document["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict)
    }
    assert "getRepoManifestSecurity" not in operations
    assert "listRepoTags" in operations


def test_security_accepts_an_oauth_token_as_basic_credentials(
    server: SampleQuay, http: requests.Session
) -> None:
    secret = base64.b64encode(f"$oauthtoken:{TOKENS['full']}".encode()).decode()
    basic = {"Authorization": f"Basic {secret}"}
    base = server.url + "/api/v1/repository/buynlarge/orgrepo"

    scan = http.get(f"{base}/manifest/{ORGREPO_LATEST}/security", headers=basic)
    tags = http.get(f"{base}/tag/", headers=basic)

    assert scan.status_code == 200
    assert tags.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/repository/",
        "/api/v1/organization/buynlarge/members/",
        f"/api/v1/repository/buynlarge/orgrepo/manifest/{ORGREPO_LATEST}/",
        "/api/v1/nosuchthing",
    ],
)
def test_extra_slash_lands_on_the_html_404_page(
    server: SampleQuay, http: requests.Session, path: str
) -> None:
    answer = get(http, server, path)

    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("text/html")


def test_slashless_tag_url_redirects_keeping_the_query(
    server: SampleQuay, http: requests.Session
) -> None:
    answer = get(http, server, "/api/v1/repository/buynlarge/orgrepo/tag?limit=1&page=2")

    assert answer.status_code == 308
    expected = "/api/v1/repository/buynlarge/orgrepo/tag/?limit=1&page=2"
    assert answer.headers["Location"] == server.url + expected


def test_methods_other_than_get_are_refused(server: SampleQuay, http: requests.Session) -> None:
    for method in ("POST", "PUT", "DELETE", "HEAD"):
        answer = http.request(method, server.url + "/api/v1/user/", headers=headers_for("full"))
        assert answer.status_code == 405, method


def test_browser_without_xhr_header_is_refused(server: SampleQuay, http: requests.Session) -> None:
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
    answer = http.get(server.url + "/api/v1/discovery", headers={"User-Agent": agent})

    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "X-Requested-With" in answer.json()["error"]


def test_request_log_names_path_query_status_and_caller(http: requests.Session) -> None:
    with SampleQuay() as server:
        get(http, server, "/api/v1/organization/buynlarge/robots?token=false", "reader_full")
        get(http, server, "/api/v1/user/", "bad")
        get(http, server, "/api/v1/discovery", "none")

        logged = [(r.method, r.path, r.query, r.status, r.identity) for r in server.requests]

    assert logged == [
        ("GET", "/api/v1/organization/buynlarge/robots", "token=false", 200, "reader_full"),
        ("GET", "/api/v1/user/", "", 401, "bad"),
        ("GET", "/api/v1/discovery", "", 200, "none"),
    ]


def test_max_in_flight_counts_concurrent_requests() -> None:
    with SampleQuay(latency=0.3) as server:

        def call() -> None:
            requests.get(server.url + "/api/v1/discovery", timeout=10).close()

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sequential_peak = server.max_in_flight
        server.clear_requests()
        call()

        assert sequential_peak == 4
        assert server.max_in_flight == 1
        assert len(server.requests) == 1


def test_command_line_prints_url_first_and_serves(http: requests.Session) -> None:
    command = [sys.executable, "-m", "sample_quay", "--port", "0", "--scale-orgs", "1"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            first_line = process.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", first_line)
            assert url is not None, first_line
            orgs = http.get(url.group(0) + "/api/v1/user/", headers=headers_for("full")).json()
            assert "gen-org-000" in [org["name"] for org in orgs["organizations"]]
        finally:
            process.terminate()


def test_command_line_refuses_a_public_address() -> None:
    command = [sys.executable, "-m", "sample_quay", "--host", "0.0.0.0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)

    assert done.returncode == 2
    assert "loopback" in done.stderr

"""Narrow unit cases of the status, retry and secret rules, on mocked HTTP."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
import requests

from tap_quay.client import QuayStream, retry_after_seconds

BASE = "https://quay.test"
API = f"{BASE}/api/v1"
TOKEN = "canary-user-token-5f1c"
ROBOT_SECRET = "canary-robot-secret-93ab"
AVATAR = {"name": "x", "hash": "h", "color": "#000000", "kind": "user"}
DIGEST = "sha256:" + "a" * 64
CONFIG = {"base_url": BASE, "auth_token": TOKEN, "organizations": ["acme"]}
REPO = {
    "namespace": "acme",
    "description": None,
    "is_public": False,
    "kind": "image",
    "state": "NORMAL",
    "is_starred": False,
    "last_modified": 1717258117,
    "popularity": 0.0,
}


def quay_error(status: int, kind: str) -> dict:
    """Return Quay's error object for a status."""
    return {
        "detail": kind,
        "error_message": kind,
        "error_type": kind,
        "title": kind,
        "type": f"{BASE}/api/v1/error/{kind}",
        "status": status,
    }


@pytest.fixture
def registry(requests_mock):
    """Register a one-organization, one-image registry on the mock adapter."""
    team = {
        "name": "owners",
        "description": "",
        "role": "admin",
        "avatar": AVATAR,
        "can_view": True,
        "repo_count": 0,
        "member_count": 1,
        "is_synced": False,
    }
    member = {"name": "alice", "kind": "user", "avatar": AVATAR, "teams": [], "repositories": []}
    requests_mock.get(
        f"{API}/user/",
        json={"anonymous": False, "username": "alice", "avatar": AVATAR, "organizations": []},
    )
    requests_mock.get(
        f"{API}/organization/acme",
        json={
            "name": "acme",
            "email": "",
            "avatar": AVATAR,
            "is_admin": True,
            "is_member": True,
            "teams": {"owners": team},
            "ordered_teams": ["owners"],
        },
    )
    requests_mock.get(f"{API}/organization/acme/members", json={"members": [member]})
    requests_mock.get(
        f"{API}/organization/acme/robots",
        json={
            "robots": [
                {
                    "name": "acme+ci",
                    "created": "Fri, 31 May 2024 16:08:37 -0000",
                    "last_accessed": None,
                    "description": "",
                }
            ]
        },
    )
    requests_mock.get(
        f"{API}/organization/acme/team/owners/members",
        json={
            "name": "owners",
            "can_edit": True,
            "members": [
                {
                    "name": "alice",
                    "kind": "user",
                    "is_robot": False,
                    "avatar": AVATAR,
                    "invited": False,
                }
            ],
        },
    )
    requests_mock.get(
        f"{API}/repository",
        json={"repositories": [{**REPO, "name": "web"}]},
    )
    requests_mock.get(
        f"{API}/repository/acme/web/tag/",
        json={
            "page": 1,
            "has_additional": False,
            "tags": [
                {
                    "name": "latest",
                    "reversion": False,
                    "start_ts": 1717258117,
                    "manifest_digest": DIGEST,
                    "is_manifest_list": False,
                    "size": 10,
                    "last_modified": "Sat, 01 Jun 2024 16:08:37 -0000",
                }
            ],
        },
    )
    requests_mock.get(
        f"{API}/repository/acme/web/manifest/{DIGEST}",
        json={
            "digest": DIGEST,
            "is_manifest_list": False,
            "manifest_data": "{}",
            "config_media_type": None,
            "layers_compressed_size": 10,
            "layers": [],
        },
    )
    requests_mock.get(f"{API}/discovery", status_code=404, json=quay_error(404, "not_found"))
    requests_mock.get(
        f"{API}/repository/acme/web/manifest/{DIGEST}/security",
        json={
            "status": "scanned",
            "data": {
                "Layer": {
                    "Name": DIGEST,
                    "Features": [
                        {
                            "Name": "openssl",
                            "Version": "3.1",
                            "AddedBy": DIGEST,
                            "VersionFormat": "",
                            "NamespaceName": "",
                            "BaseScores": [7.5],
                            "CVEIds": ["CVE-2099-1"],
                            "Vulnerabilities": [{"Name": "CVE-2099-1", "Severity": "High"}],
                        }
                    ],
                }
            },
        },
    )
    return requests_mock


def test_retry_after_is_read_as_seconds_fraction_or_http_date():
    def answer(value: str | None) -> SimpleNamespace:
        return SimpleNamespace(headers={"Retry-After": value} if value else {})

    assert retry_after_seconds(answer("3")) == 3.0
    assert retry_after_seconds(answer("0.25")) == 0.25
    assert retry_after_seconds(answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0
    assert retry_after_seconds(answer(None)) is None
    assert retry_after_seconds(answer("soon")) is None


def test_waits_honour_retry_after_and_otherwise_double(sync_in_process):
    from singer_sdk.exceptions import RetriableAPIError

    from tap_quay.tap import TapQuay

    stream = TapQuay(config=CONFIG, parse_env_config=False).streams["organizations"]
    assert isinstance(stream, QuayStream)
    waits = stream.backoff_wait_generator()
    waits.send(None)

    def error(retry_after: str | None) -> RetriableAPIError:
        response = requests.Response()
        if retry_after:
            response.headers["Retry-After"] = retry_after
        return RetriableAPIError("429", response)

    assert [waits.send(error(None)) for _ in range(3)] == [1.0, 2.0, 4.0]
    assert waits.send(error("7")) == 7.0
    assert all(stream.backoff_jitter(7.0) >= 7.0 for _ in range(50))


def test_server_errors_and_rate_limits_are_retried(registry, sync_in_process, fast_retries):
    registry.get(
        f"{API}/organization/acme",
        [
            {"status_code": 503, "text": "<html>busy</html>"},
            {"status_code": 429, "headers": {"Retry-After": "0"}},
            {"status_code": 520, "json": quay_error(520, "downstream_issue")},
            {
                "json": {
                    "name": "acme",
                    "email": "",
                    "avatar": AVATAR,
                    "is_admin": True,
                    "is_member": True,
                }
            },
        ],
    )
    code, output = sync_in_process(CONFIG)
    assert code == 0
    assert [record["name"] for record in output.records["organizations"]] == ["acme"]


def test_dropped_connections_are_retried(registry, sync_in_process, fast_retries):
    registry.get(
        f"{API}/organization/acme/members",
        [
            {"exc": requests.exceptions.ConnectionError("reset by peer")},
            {"exc": requests.exceptions.ReadTimeout("read timed out")},
            {
                "json": {
                    "members": [
                        {
                            "name": "bob",
                            "kind": "user",
                            "avatar": AVATAR,
                            "teams": [],
                            "repositories": [],
                        }
                    ]
                }
            },
        ],
    )
    code, output = sync_in_process(CONFIG)
    assert code == 0
    assert [record["name"] for record in output.records["organization_members"]] == ["bob"]


def test_a_resource_that_keeps_failing_fails_the_run_after_everything_else(
    registry, sync_in_process, fast_retries, caplog
):
    registry.get(
        f"{API}/repository/acme/web/manifest/{DIGEST}/security",
        status_code=520,
        json=quay_error(520, "downstream_issue"),
    )
    code, output = sync_in_process(CONFIG)
    assert code == 1
    assert output.count("tags") == 1
    assert output.records["manifests"][0]["security_status"] == "unavailable"
    assert output.count("manifest_packages") == 0
    summary = [r.message for r in caplog.records if "could not be read" in r.message]
    assert summary
    assert f"/api/v1/repository/acme/web/manifest/{DIGEST}/security" in summary[-1]


def test_a_rejected_token_stops_the_run_with_one_line(registry, sync_in_process, caplog):
    registry.get(
        f"{API}/organization/acme/members", status_code=401, json=quay_error(401, "invalid_token")
    )
    code, _ = sync_in_process(CONFIG)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert code == 1
    assert any("rejected the token" in r.getMessage() for r in errors)
    assert all(r.exc_info is None for r in errors)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_forbidden_and_missing_resources_come_out_empty_with_one_warning(
    registry, sync_in_process, caplog
):
    config = {**CONFIG, "organizations": ["acme", "beta"]}
    beta = {"name": "beta", "email": "", "avatar": AVATAR, "is_admin": True, "is_member": True}
    registry.get(f"{API}/organization/beta", json=beta)
    registry.get(f"{API}/organization/beta/members", json={"members": []})
    registry.get(f"{API}/repository?namespace=beta", json={"repositories": []})
    for organization in ("acme", "beta"):
        registry.get(
            f"{API}/organization/{organization}/robots",
            status_code=403,
            json=quay_error(403, "insufficient_scope"),
        )
    code, output = sync_in_process(config)
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "robot_accounts" in r.getMessage()
    ]
    robot_calls = [c for c in registry.request_history if c.path.endswith("/robots")]
    assert code == 0
    assert len(robot_calls) == 2
    assert output.count("robot_accounts") == 0
    assert output.count("organizations") == 2
    assert len(warnings) == 1


def test_an_organization_listed_twice_is_read_once(registry, sync_in_process):
    code, output = sync_in_process({**CONFIG, "organizations": ["acme", "acme"]})
    assert code == 0
    assert output.count("organizations") == output.count("organization_members") == 1


def test_an_answer_that_is_not_json_is_a_one_line_error(
    registry, sync_in_process, caplog, fast_retries
):
    registry.get(
        f"{API}/repository", text="<html>Sign in</html>", headers={"Content-Type": "text/html"}
    )
    code, _ = sync_in_process(CONFIG)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert code == 1
    assert any("/api/v1/repository" in e and "text/html" in e for e in errors)


def test_robot_secrets_are_never_requested_or_emitted(registry, sync_in_process, caplog):
    registry.get(
        f"{API}/organization/acme/robots",
        json={
            "robots": [
                {
                    "name": "acme+ci",
                    "created": None,
                    "last_accessed": None,
                    "description": "",
                    "token": ROBOT_SECRET,
                },
                {
                    "name": "acme-prod+other",
                    "created": None,
                    "last_accessed": None,
                    "description": "",
                    "token": ROBOT_SECRET,
                },
            ]
        },
    )
    code, output = sync_in_process(CONFIG)
    robots_call = next(c for c in registry.request_history if c.path.endswith("/robots"))
    assert robots_call.qs["token"] == ["false"]
    assert code == 0
    assert [record["name"] for record in output.records["robot_accounts"]] == ["acme+ci"]
    assert "token" not in output.records["robot_accounts"][0]
    assert ROBOT_SECRET not in repr(output) + caplog.text


def test_only_get_requests_are_sent(registry, sync_in_process):
    sync_in_process(CONFIG)
    assert {call.method for call in registry.request_history} == {"GET"}


def test_security_rows_come_from_one_report(registry, sync_in_process):
    code, output = sync_in_process(CONFIG)
    security_calls = [c for c in registry.request_history if c.path.endswith("/security")]
    assert code == 0
    assert len(security_calls) == 1
    assert security_calls[0].qs["vulnerabilities"] == ["true"]
    assert output.records["manifests"][0]["security_status"] == "scanned"
    package = output.records["manifest_packages"][0]
    finding = output.records["manifest_vulnerabilities"][0]
    assert (package["manifest_digest"], package["Name"], package["package_index"]) == (
        DIGEST,
        "openssl",
        0,
    )
    assert "Vulnerabilities" not in package
    assert (finding["package_name"], finding["package_version"], finding["Name"]) == (
        "openssl",
        "3.1",
        "CVE-2099-1",
    )


def test_no_security_requests_when_not_collecting(registry, sync_in_process):
    code, output = sync_in_process({**CONFIG, "collect_vulnerabilities": False})
    assert code == 0
    assert not [
        c for c in registry.request_history if "security" in c.path or "discovery" in c.path
    ]
    assert output.records["manifests"][0]["security_status"] == "not_requested"
    assert output.count("manifest_packages") == output.count("manifest_vulnerabilities") == 0


def test_a_registry_without_scanner_yields_no_security_rows(registry, sync_in_process):
    registry.get(
        f"{API}/repository/acme/web/manifest/{DIGEST}/security",
        status_code=404,
        json=quay_error(404, "not_found"),
    )
    code, output = sync_in_process(CONFIG)
    assert code == 0
    assert output.records["manifests"][0]["security_status"] == "no_scanner"
    assert output.count("manifest_packages") == 0


def test_an_api_description_without_the_scanner_saves_the_security_requests(
    registry, sync_in_process
):
    registry.get(
        f"{API}/discovery",
        json={"paths": {"/api/v1/user/": {"get": {"operationId": "getLoggedInUser"}}}},
    )
    code, output = sync_in_process(CONFIG)
    assert code == 0
    assert not [c for c in registry.request_history if c.path.endswith("/security")]
    assert output.records["manifests"][0]["security_status"] == "no_scanner"


def test_timestamps_are_rfc3339_utc(registry, sync_in_process):
    _, output = sync_in_process(CONFIG)
    assert output.records["repositories"][0]["last_modified"] == "2024-06-01T16:08:37Z"
    tag = output.records["tags"][0]
    assert (tag["start_ts"], tag["last_modified"]) == ("2024-06-01T16:08:37Z",) * 2
    assert output.records["robot_accounts"][0]["created"] == "2024-05-31T16:08:37Z"
    assert output.records["robot_accounts"][0]["last_accessed"] is None


def test_an_api_description_that_keeps_failing_does_not_fail_the_run(
    registry, sync_in_process, fast_retries
):
    registry.get(f"{API}/discovery", status_code=503, text="<html>busy</html>")
    code, output = sync_in_process(CONFIG)
    assert code == 0
    assert output.records["manifests"][0]["security_status"] == "scanned"
    assert output.count("manifest_packages") == 1


# A hostile or broken registry: nothing lost silently, nothing leaked ------------------


def failed(caplog) -> str:
    """Return the end-of-run summary of resources that could not be read."""
    return "\n".join(
        r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()
    )


def test_a_later_page_refused_fails_the_listing_instead_of_truncating_it(
    registry, sync_in_process, caplog
):
    registry.get(
        f"{API}/repository",
        [
            {"json": {"repositories": [{**REPO, "name": "web"}], "next_page": "c2"}},
            {"status_code": 404, "json": quay_error(404, "not_found")},
        ],
    )
    code, output = sync_in_process(CONFIG)
    assert code == 1
    assert output.count("repositories") == 1
    assert "repositories of namespace acme" in failed(caplog)


def test_a_row_repeated_within_one_answer_is_written_once(registry, sync_in_process):
    member = {"name": "bob", "kind": "user", "avatar": AVATAR, "teams": [], "repositories": []}
    registry.get(f"{API}/organization/acme/members", json={"members": [member, member]})
    code, output = sync_in_process(CONFIG)
    assert code == 0
    assert output.count("organization_members") == 1


def test_a_row_without_its_key_fails_that_listing(registry, sync_in_process, caplog):
    registry.get(
        f"{API}/organization/acme/robots",
        json={
            "robots": [
                {"name": "acme+ci", "created": None, "last_accessed": None, "description": ""},
                {"created": None, "last_accessed": None, "description": ""},
            ]
        },
    )
    code, _ = sync_in_process(CONFIG)
    assert code == 1
    assert "robot accounts of organization acme" in failed(caplog)


def test_a_truthy_has_additional_is_followed_and_an_empty_page_claiming_more_fails(
    registry, sync_in_process, caplog
):
    tag = {
        "reversion": False,
        "start_ts": 1717258117,
        "manifest_digest": DIGEST,
        "is_manifest_list": False,
        "size": 1,
    }
    registry.get(
        f"{API}/repository/acme/web/tag/",
        [
            {"json": {"page": 1, "has_additional": "true", "tags": [{**tag, "name": "a"}]}},
            {"json": {"page": 2, "has_additional": True, "tags": []}},
        ],
    )
    code, output = sync_in_process(CONFIG)
    pages = [c.qs["page"] for c in registry.request_history if c.path.endswith("/tag/")]
    assert pages == [["1"], ["2"]]
    assert code == 1
    assert output.count("tags") == 1
    assert "tags of repository acme/web" in failed(caplog)


def test_a_manifest_answer_for_another_digest_is_not_recorded(registry, sync_in_process):
    other = "sha256:" + "b" * 64
    registry.get(
        f"{API}/repository/acme/web/manifest/{DIGEST}",
        json={
            "digest": other,
            "is_manifest_list": False,
            "manifest_data": "{}",
            "config_media_type": None,
            "layers_compressed_size": 1,
            "layers": [],
        },
    )
    code, output = sync_in_process(CONFIG)
    assert code == 1
    assert output.count("manifests") == 0


@pytest.mark.parametrize(
    "data",
    [None, {"Layer": {"Features": None}}, {"Layer": {"Features": [{"Vulnerabilities": "x"}]}}],
)
def test_a_scanned_report_without_packages_is_not_taken_for_a_clean_image(
    registry, sync_in_process, data
):
    registry.get(
        f"{API}/repository/acme/web/manifest/{DIGEST}/security",
        json={"status": "scanned", "data": data},
    )
    code, output = sync_in_process(CONFIG)
    assert code == 1
    assert output.records["manifests"][0]["security_status"] == "unavailable"
    assert output.count("manifest_packages") == 0


@pytest.mark.parametrize("name", ["../../organization/acme/robots?token=true&x=", "..", "a/./b"])
def test_names_from_answers_cannot_climb_the_url_path(registry, sync_in_process, name):
    registry.get(f"{API}/repository", json={"repositories": [{**REPO, "name": name}]})
    code, _ = sync_in_process(CONFIG)
    climbed = [c.path for c in registry.request_history if "/repository/" in c.path]
    assert code == 1
    assert climbed == []
    robots_calls = [c for c in registry.request_history if c.path.endswith("/robots")]
    assert all(c.qs["token"] == ["false"] for c in robots_calls)


def test_a_digest_is_escaped_in_the_url(registry, sync_in_process):
    odd = "sha256:abc/../../../../../organization/acme/robots#"
    registry.get(
        f"{API}/repository/acme/web/tag/",
        json={
            "page": 1,
            "has_additional": False,
            "tags": [
                {
                    "name": "x",
                    "reversion": False,
                    "start_ts": 1717258117,
                    "manifest_digest": odd,
                    "is_manifest_list": False,
                    "size": 1,
                }
            ],
        },
    )
    registry.get(re.compile(r"/manifest/"), status_code=404, json=quay_error(404, "not_found"))
    sync_in_process(CONFIG)
    manifest_paths = [c.path for c in registry.request_history if "/manifest/" in c.path]
    assert manifest_paths
    assert all(
        p.startswith("/api/v1/repository/acme/web/manifest/sha256:abc%2f") for p in manifest_paths
    )


def test_a_redirect_is_not_followed_and_its_query_is_not_logged(registry, sync_in_process, caplog):
    registry.get(
        f"{API}/organization/acme/members",
        status_code=302,
        headers={"Location": f"http://127.0.0.2:9/steal?t={TOKEN}"},
    )
    code, _ = sync_in_process(CONFIG)
    assert code == 1
    assert not [c for c in registry.request_history if "steal" in c.path]
    assert "http://127.0.0.2:9" in caplog.text
    assert TOKEN not in caplog.text


def test_header_values_echoing_the_token_are_not_logged(
    registry, sync_in_process, caplog, fast_retries
):
    registry.get(
        f"{API}/repository/acme/web/tag/",
        text="<html>",
        headers={"Content-Type": f"text/html; charset=Bearer {TOKEN}"},
    )
    code, _ = sync_in_process(CONFIG)
    assert code == 1
    assert "text/html" in caplog.text
    assert TOKEN not in caplog.text


def test_an_unparseable_value_fails_its_listing_without_quoting_it(
    registry, sync_in_process, caplog
):
    registry.get(
        f"{API}/organization/acme/robots",
        json={
            "robots": [
                {
                    "name": "acme+ci",
                    "created": f"yesterday {ROBOT_SECRET}",
                    "last_accessed": None,
                    "description": "",
                }
            ]
        },
    )
    code, output = sync_in_process(CONFIG)
    assert code == 1
    assert output.count("repositories") == 1  # the rest of the registry still synced
    assert ROBOT_SECRET not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)


def test_a_bad_request_on_one_resource_fails_only_that_resource(registry, sync_in_process, caplog):
    registry.get(
        f"{API}/organization/acme/members", status_code=400, json=quay_error(400, "invalid_request")
    )
    code, output = sync_in_process(CONFIG)
    assert code == 1
    assert output.count("tags") == 1
    assert "members of organization acme" in failed(caplog)

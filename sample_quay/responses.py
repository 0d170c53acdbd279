"""HTTP requests, and responses in the shapes Quay sends: JSON, errors, redirects, HTML."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Protocol

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"

# Headers every recorded API response carried.
API_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "DELETE, GET, HEAD, OPTIONS, POST, PUT",
    "Access-Control-Max-Age": "21600",
    "Access-Control-Allow-Headers": "AUTHORIZATION, CONTENT-TYPE, X-REQUESTED-WITH",
}

_NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><title>Quay</title></head>
<body><h1>404</h1><p>The page you are looking for could not be found.</p></body>
</html>
"""

_REDIRECT_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
    "<p>You should be redirected automatically to the target URL: "
    '<a href="{url}">{url}</a>. If not, click the link.\n'
)


class Headers(Protocol):
    """Case-insensitive header access, as http.server's message object gives."""

    def get(self, name: str, /) -> str | None:
        """Return a header's value, or None."""


@dataclass(frozen=True)
class Request:
    """One HTTP request: method, raw and decoded path, query string, headers."""

    method: str
    raw_path: str
    path: str
    query: str
    headers: Headers


@dataclass
class Response:
    """One HTTP answer: status, body bytes, content type and extra headers.

    `stall` delays the answer by that many seconds; `reset_after` sends that
    many body bytes and then resets the connection (both for fault injection).
    """

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0
    reset_after: int | None = None


class ApiError(Exception):
    """An error answered with Quay's error object (`detail`, `error_type`...)."""

    def __init__(self, status: int, error_type: str, detail: str, **extra: object) -> None:
        """Keep the status, error type and detail; `extra` keys lead the body."""
        super().__init__(detail)
        self.status = status
        self.error_type = error_type
        self.detail = detail
        self.extra = extra

    def response(self, public_host: str) -> Response:
        """Render the error object; `type` points at the server's own host."""
        body = dict(self.extra)
        body.update(
            detail=self.detail,
            error_message=self.detail,
            error_type=self.error_type,
            title=self.error_type,
            type=f"http://{public_host}/api/v1/error/{self.error_type}",
            status=self.status,
        )
        return json_response(body, self.status)


class MessageError(Exception):
    """An error answered with Flask's bare `{"message": ...}` body."""

    def __init__(self, status: int, message: object) -> None:
        """Keep the status and the message (a string or a dict per parameter)."""
        super().__init__(str(message))
        self.status = status
        self.message = message

    def response(self) -> Response:
        """Render the bare message body."""
        return json_response({"message": self.message}, self.status)


def not_found() -> ApiError:
    """Build Quay's 404 not_found error."""
    return ApiError(404, "not_found", "Not Found")


def invalid_request(detail: str) -> ApiError:
    """Build Quay's 400 invalid_request error."""
    return ApiError(400, "invalid_request", detail)


def json_response(payload: object, status: int = 200) -> Response:
    """Serialize a JSON payload."""
    return Response(status, json.dumps(payload).encode() + b"\n")


def html_not_found() -> Response:
    """Answer like the web UI's catch-all page for URLs no API route matches."""
    return Response(404, _NOT_FOUND_PAGE.encode(), HTML_TYPE)


def redirect(location: str) -> Response:
    """Answer a permanent redirect (Werkzeug's strict-slash 308)."""
    page = _REDIRECT_PAGE.format(url=html.escape(location))
    return Response(308, page.encode(), HTML_TYPE, {"Location": location})


def abort(status: int, message: str) -> Response:
    """Answer like Quay's abort helper: `{"error": ...}` JSON labelled text/html."""
    return Response(status, json.dumps({"error": message}).encode() + b"\n", HTML_TYPE)


def method_not_allowed() -> Response:
    """Answer a method other than GET (Flask-RESTful's 405 body)."""
    body = {"message": "The method is not allowed for the requested URL."}
    return Response(405, json.dumps(body).encode() + b"\n", headers={"Allow": "GET"})

"""The HTTP policy every Quay stream shares: URL, auth, status handling and retries."""

from __future__ import annotations

import itertools
import random
import typing as t
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from importlib.metadata import version
from urllib.parse import quote, urlparse

import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import APIAuthenticatorBase, BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import SinglePagePaginator
from typing_extensions import override

from tap_quay.errors import (
    InvalidTokenError,
    PagingError,
    ResourceUnavailable,
    UnexpectedResponseError,
)

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context, Record

    from tap_quay.tap import TapQuay

USER_AGENT = f"tap-quay/{version('tap-quay')}"
MAX_TRIES = 5
FIRST_RETRY_WAIT = 1.0

#: Why a 401, 403 or 404 answer most likely happened, for the one warning per stream.
SKIP_HINTS = {
    401: "no valid token was sent",
    403: "the token lacks a scope (org:admin, repo:read) or the user lacks a role there",
    404: "it does not exist",
}


def is_retried(status: int) -> bool:
    """Tell whether Quay, or the proxy in front of it, asks to try again later."""
    return status == 429 or status >= 500


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Read ``Retry-After`` as seconds (integer or fraction) or as an HTTP date."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def url_path(response: requests.Response) -> str:
    """Return the URL path of a response, never its query string."""
    return urlparse(response.url).path


class QuayStream(RESTStream[t.Any]):
    """A stream read from Quay's REST API v1."""

    #: JSON key holding the list of records; None when the body is the record itself.
    records_key: str | None = None
    #: Context fields copied into every record (the parent's keys).
    parent_keys: tuple[str, ...] = ()
    #: What one request of this stream reads, as warnings name it.
    resource: str = "a resource"

    # State holds nothing per organization, repository or manifest: every run is full.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    _schema_written = False

    @property
    def quay(self) -> TapQuay:
        """Return the tap, with the services shared by all streams."""
        return t.cast("TapQuay", self._tap)

    @property
    @override
    def url_base(self) -> str:
        return f"{self.config['base_url'].rstrip('/')}/api/v1"

    @override
    def get_url(self, context: Context | None) -> str:
        return self.build_url(self.path or "", context)

    def build_url(self, path: str, context: Context | None) -> str:
        """Fill a path template from the context and prefix the API root."""
        # Repository names may hold slashes, which Quay wants literally (not %2F).
        values = {key: quote(str(value), safe="/:") for key, value in (context or {}).items()}
        return self.url_base + path.format(**values)

    @cached_property
    @override
    def authenticator(self) -> APIAuthenticatorBase:
        token = self.config.get("auth_token")
        return BearerTokenAuthenticator(token=token) if token else APIAuthenticatorBase()

    @cached_property
    @override
    def user_agent(self) -> str:
        return self.config.get("user_agent") or USER_AGENT

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.quay.session

    @property
    @override
    def timeout(self) -> int:
        return t.cast("int", self.config["request_timeout"])

    @override
    def get_new_paginator(self) -> t.Any:
        return SinglePagePaginator()

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if is_retried(status):
            raise RetriableAPIError(self.response_error_message(response), response)
        if status == 401 and self.config.get("auth_token"):
            raise InvalidTokenError(
                f"Quay rejected the token (401 on {url_path(response)}): check that "
                "auth_token is a current OAuth token with the repo:read and org:admin scopes."
            )
        if status in SKIP_HINTS:
            raise ResourceUnavailable(status, url_path(response))
        if status >= 300:
            raise UnexpectedResponseError(
                f"Quay answered {status} {response.reason} to GET {url_path(response)}; "
                "check base_url and that the server is a Quay registry."
            )

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # Never the body: error bodies may echo internal hosts and are often whole pages.
        return f"{response.status_code} {response.reason} for {url_path(response)}"

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[Record]:
        body = self.response_json(response)
        if self.records_key is None:
            yield body
            return
        rows = body.get(self.records_key)
        if not isinstance(rows, list):
            raise UnexpectedResponseError(
                f"Quay's answer to GET {url_path(response)} has no '{self.records_key}' list."
            )
        yield from rows

    def response_json(self, response: requests.Response) -> Record:
        """Decode a JSON object, or stop with a message naming the path and content type."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            content_type = response.headers.get("Content-Type") or "no content type"
            raise UnexpectedResponseError(
                f"Expected a JSON object from GET {url_path(response)} but got {content_type} "
                f"({len(response.content)} bytes); is a proxy or sign-in page in front of Quay?"
            )
        return body

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        try:
            yield from self.request_records(context)
        except ResourceUnavailable as gap:
            self.quay.problems.skip(
                self.name, gap.status, self.describe(context), SKIP_HINTS[gap.status]
            )
        except (RetriableAPIError, requests.RequestException, PagingError) as error:
            self.quay.problems.fail(self.name, self.describe(context), self.explain(error))

    def fetch_json(self, context: Context, path: str) -> Record | None:
        """GET one object outside the stream's own listing, with the same policy and retries.

        Raises ResourceUnavailable for 401 (anonymous), 403 and 404, for the caller to
        judge; returns None when the request kept failing, which is reported as a failure.
        """
        url = self.build_url(path, context)
        prepared = self.build_prepared_request(method="GET", url=url, headers=self.http_headers)
        send = self.request_decorator(self._request)
        try:
            return self.response_json(send(prepared, context))
        except (RetriableAPIError, requests.RequestException) as error:
            self.quay.problems.fail(self.name, urlparse(url).path, self.explain(error))
        return None

    def describe(self, context: Context | None) -> str:
        """Name the resource one request reads, for warnings and failures."""
        where = "/".join(str(value) for value in (context or {}).values())
        return f"{self.resource} {where}".strip()

    @staticmethod
    def explain(error: Exception) -> str:
        """Say why a request failed, without URLs' query strings or response bodies."""
        if isinstance(error, (RetriableAPIError, PagingError)):
            return str(error)
        return type(error).__name__

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        keys = {key: (context or {})[key] for key in self.parent_keys}
        return {**keys, **self.transform(row)}

    def transform(self, row: Record) -> Record:
        """Turn one Quay object into a record; streams override this for their fields."""
        return row

    # Retries ---------------------------------------------------------------

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        error = yield 0.0  # backoff primes the generator, then sends each exception
        for attempt in itertools.count():
            response = getattr(error, "response", None)
            asked = retry_after_seconds(response)
            error = yield asked if asked is not None else FIRST_RETRY_WAIT * 2**attempt

    @override
    def backoff_max_tries(self) -> int:
        return MAX_TRIES

    @override
    def backoff_jitter(self, value: float) -> float:
        # Jitter only ever adds, so a Retry-After is always honoured in full.
        return value + random.uniform(0, min(1.0, value / 2))

    @override
    def backoff_handler(self, details: Details) -> None:
        error = details.get("exception")
        self.logger.warning(
            "%s: retrying in %.1f s (try %d of %d) after %s",
            self.name,
            details.get("wait") or 0.0,
            details.get("tries", 0),
            MAX_TRIES,
            self.explain(error) if isinstance(error, Exception) else "an error",
        )

    # Output ----------------------------------------------------------------

    @override
    def _write_schema_message(self) -> None:
        # The SDK writes a child's SCHEMA again for every parent record; once is enough.
        if not self._schema_written:
            super()._write_schema_message()
            self._schema_written = True

"""The HTTP policy every Quay stream shares: URL, auth, status handling and retries."""

from __future__ import annotations

import itertools
import random
import re
import typing as t
from functools import cached_property
from importlib.metadata import version
from urllib.parse import quote, urljoin, urlparse

import backoff
import requests
from singer_sdk import RESTStream
from singer_sdk.authenticators import APIAuthenticatorBase, BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import SinglePagePaginator
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_quay.errors import (
    InvalidTokenError,
    QuayError,
    ResourceUnavailable,
    UnexpectedResponseError,
    UnusableAnswer,
)
from tap_quay.transport import Order, retry_after_seconds

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context, Record

    from tap_quay.tap import TapQuay

USER_AGENT = f"tap-quay/{version('tap-quay')}"
#: Key of a row's walk position; set by the stream that read the row, removed before output.
POSITION = "__position"
MAX_TRIES = 5
FIRST_RETRY_WAIT = 1.0
#: Longest wait between two tries, in seconds, unless the max_retry_wait setting says.
MAX_RETRY_WAIT = 300.0

#: Why a 401, 403 or 404 answer most likely happened, for the one warning per stream.
SKIP_HINTS = {
    401: "no valid token was sent",
    403: "the token lacks a scope (org:admin, repo:read) or the user lacks a role there",
    404: "it does not exist",
}


MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,40}/[a-z0-9!#$&^_.+-]{1,60}", re.IGNORECASE)
#: What a malformed answer raises while it is read; each fails that one resource.
MALFORMED = (UnusableAnswer, KeyError, TypeError, ValueError, AttributeError)


def is_retried(status: int) -> bool:
    """Tell whether Quay, or the proxy in front of it, asks to try again later."""
    return status == 429 or status >= 500


def url_path(response: requests.Response) -> str:
    """Return the URL path of a response, never its query string."""
    return urlparse(response.url).path


def path_segment(key: str, value: object) -> str:
    """Escape a name for a URL path; only a repository name keeps its slashes (nested names)."""
    escaped = quote(str(value), safe="/:" if key == "repository" else ":")
    if not escaped or {".", ".."} & set(escaped.split("/")):
        raise UnusableAnswer(f"refusing to request a path with the {key} {escaped!r}")
    return escaped


def media_type(response: requests.Response) -> str:
    """Return the answer's media type only: header values can echo anything, the token too."""
    value = (response.headers.get("Content-Type") or "").split(";")[0].strip()
    return value if MEDIA_TYPE.fullmatch(value) else "an unnamed content type"


def origin(url: str) -> str:
    """Return a URL's scheme, host and port (default ports spelled out), which a redirect keeps."""
    parts = urlparse(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}".lower()


def refuse_retry(error: object, longest: float) -> None:
    """Raise instead of retrying when waiting cannot help or would take too long.

    A certificate that fails verification stops the run; a Retry-After above ``longest``
    fails the one resource, with the wait Quay asked for in the message.
    """
    if isinstance(error, requests.exceptions.SSLError) and "certificate verify" in str(error):
        host = urlparse(getattr(error.request, "url", "") or "").netloc or "the registry"
        raise UnexpectedResponseError(
            f"The TLS certificate of {host} could not be verified: set ca_bundle to the "
            "PEM file of the certificate authority that signed it."
        )
    response = getattr(error, "response", None)
    asked = retry_after_seconds(response)
    if asked is not None and asked > longest:
        raise RetriableAPIError(
            f"{error}: Quay asked to wait {asked:.0f} s (Retry-After), longer than "
            f"max_retry_wait ({longest:g} s)",
            response,
        )


class QuayStream(RESTStream[t.Any]):
    """A stream read from Quay's REST API v1."""

    #: URL path template under /api/v1; empty for streams cut from another stream's answer.
    path = ""
    #: JSON key holding the list of records; None when the body is the record itself.
    records_key: str | None = None
    #: Context fields copied into every record (the parent's keys).
    parent_keys: tuple[str, ...] = ()
    #: What one request of this stream reads, as warnings name it.
    resource: str = "a resource"
    #: Why this stream's 401, 403 or 404 most likely happened, for its warning.
    skip_hints: t.ClassVar[dict[int, str]] = SKIP_HINTS
    #: True for streams Quay shows only to a signed-in user: without a token they stay empty.
    needs_token: bool = False

    # Records are built from Quay's JSON as the schemas describe it; checking the types of
    # every nested value again costs CPU on each record and changes nothing.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY

    allow_redirects = False

    # State holds nothing per organization, repository or manifest: every run is full.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    #: Where the record being processed sits in the depth-first walk of the SDK.
    position: Order = ()

    _schema_written = False
    #: The table version the SDK stamps on this run's records; None until the stream syncs.
    table_version: int | None = None
    _last_body: tuple[requests.Response | None, Record] = (None, {})

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
        return self.build_url(self.path, context)

    def build_url(self, path: str, context: Context | None) -> str:
        """Fill a path template from the context and prefix the API root.

        Names come from Quay's answers, so they are escaped and may not climb the path.
        """
        values = {key: path_segment(key, value) for key, value in (context or {}).items()}
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
        return self.quay.transport

    @property
    @override
    def timeout(self) -> int:
        # The SDK reads a fraction in a JSON config as a Decimal, which sockets refuse.
        return t.cast("int", float(self.config["request_timeout"]))

    @override
    def get_new_paginator(self) -> t.Any:
        return SinglePagePaginator()

    @override
    def validate_response(self, response: requests.Response) -> None:
        self.quay.progress.requests[self.name] += 1
        status = response.status_code
        if response.is_redirect:
            # Redirects are not followed: the token goes to base_url and nowhere else, and
            # Quay's API paths as the tap writes them never redirect.
            target = origin(urljoin(response.url, response.headers.get("Location", "")))
            raise UnexpectedResponseError(
                f"GET {url_path(response)} was redirected ({status}) to {target}; the tap "
                "sends its token only to base_url and does not follow redirects. Set "
                "base_url to the registry's own address."
            )
        if is_retried(status):
            raise RetriableAPIError(self.response_error_message(response), response)
        if status == 401 and self.config.get("auth_token"):
            raise InvalidTokenError(
                f"Quay rejected the token (401 on {url_path(response)}): check that "
                "auth_token is a current OAuth token with the repo:read and org:admin scopes."
            )
        if status in SKIP_HINTS:
            raise ResourceUnavailable(status, url_path(response))
        if status >= 300:  # 400 and the like: this one request cannot succeed
            raise UnusableAnswer(f"Quay answered {status} to GET {url_path(response)}")
        # A proxy's sign-in page or a cut-off body: retried, then that resource fails.
        self.response_json(response)

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
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UnusableAnswer(
                f"Quay's answer to GET {url_path(response)} has no '{self.records_key}' list "
                "of objects"
            )
        yield from rows

    def response_json(self, response: requests.Response) -> Record:
        """Decode a JSON object, or raise a retriable error naming the path and content type.

        The last body is kept, so the paginator reads it without decoding it again.
        """
        if self._last_body[0] is response:
            return self._last_body[1]
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            content_type = media_type(response)
            raise RetriableAPIError(
                f"Expected a JSON object from GET {url_path(response)} but got {content_type} "
                f"({len(response.content)} bytes); is a proxy or sign-in page in front of Quay?",
                response,
            )
        self._last_body = (response, body)
        return body

    @property
    def anonymous_skip(self) -> bool:
        """Tell whether this stream is skipped because no token is configured."""
        return self.needs_token and not self.config.get("auth_token")

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        if self.anonymous_skip:
            return
        keys: set[tuple[t.Any, ...]] = set()
        try:
            for row in self.request_records(context):
                record = self.transform(row)
                key = self.own_key(record)
                if None in key:
                    raise UnusableAnswer(f"a row has no {', '.join(self.primary_keys)}")
                if key not in keys:  # a row repeated in one listing is the same row
                    keys.add(key)
                    yield record
        except ResourceUnavailable as gap:
            if keys:  # a later page refused: what was read is only part of the listing
                self.quay.problems.fail(self.name, self.describe(context), str(gap))
            else:
                hint = self.skip_hints[gap.status]
                self.quay.problems.skip(self.name, gap.status, self.describe(context), hint)
        except (RetriableAPIError, requests.RequestException, *MALFORMED) as error:
            self.quay.problems.fail(self.name, self.describe(context), self.explain(error))

    def own_key(self, record: Record) -> tuple[t.Any, ...]:
        """Return the key fields a row brings itself (its parent's come from the context)."""
        return tuple(record.get(key) for key in self.primary_keys if key not in self.parent_keys)

    def fetch_json(self, context: Context, path: str, *, optional: bool = False) -> Record | None:
        """GET one object outside the stream's own listing, with the same policy and retries.

        Raises ResourceUnavailable for 401 (anonymous), 403 and 404, for the caller to
        judge; returns None when the request kept failing, which is reported as a failure
        unless the answer was ``optional`` (the run does not depend on it).
        """
        url = self.build_url(path, context)
        prepared = self.build_prepared_request(method="GET", url=url, headers=self.http_headers)
        send = self.request_decorator(self._request)
        try:
            return self.response_json(send(prepared, context))
        except QuayError:
            if not optional:
                raise
        except (RetriableAPIError, requests.RequestException) as error:
            if not optional:
                self.quay.problems.fail(self.name, urlparse(url).path, self.explain(error))
        return None

    def describe(self, context: Context | None) -> str:
        """Name the resource one request reads, for warnings and failures."""
        where = "/".join(str(value) for value in (context or {}).values())
        return f"{self.resource} {where}".strip()

    @staticmethod
    def explain(error: Exception) -> str:
        """Say why a request failed, without URLs' query strings or response bodies."""
        if isinstance(error, (RetriableAPIError, UnusableAnswer)):
            return str(error)
        # Other errors' text can quote the answer (a value, a URL with its query): not shown.
        return f"{type(error).__name__} while reading the answer"

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        self.quay.progress.record(self.name)
        self.position = row.pop(POSITION, self.position)
        keys = {key: (context or {})[key] for key in self.parent_keys}
        return {**keys, **row}

    # Look-ahead --------------------------------------------------------------

    @property
    def wanted(self) -> bool:
        """Tell whether the SDK will sync this stream (itself or for its children)."""
        return (self.selected or self.has_selected_descendents) and not self.anonymous_skip

    @cached_property
    def parent(self) -> QuayStream:
        """Return the stream whose records this stream is synced for."""
        parents = [s for s in self.quay.streams.values() if type(s) is self.parent_stream_type]
        return t.cast("QuayStream", parents[0])

    @cached_property
    def rank(self) -> int:
        """Return this stream's place among its parent's children, from 1."""
        return [type(child) for child in self.parent.child_streams].index(type(self)) + 1

    def page_order(self, page_index: int) -> Order:
        """Return when the SDK will ask for page ``page_index`` (from 0) of this listing."""
        return (*self.parent.position, self.rank, page_index)

    def prefetch(
        self,
        order: Order,
        context: Context,
        page: t.Any = None,
        path: str | None = None,
        follow: t.Callable[[requests.Response], None] | None = None,
    ) -> None:
        """Have the transport fetch ahead a request this stream will make later.

        Without ``path`` it is a page of the stream's own listing; ``order`` says when,
        in the SDK's depth-first walk, the stream will ask for it.
        """
        if not self.quay.transport.workers:
            return
        try:
            url = self.prefetch_url(context, page, path)
        except UnusableAnswer:
            return  # the request itself will fail, and be reported, when the SDK makes it

        def build() -> requests.PreparedRequest:
            return self.build_prepared_request(method="GET", url=url, headers=self.http_headers)

        self.quay.transport.prefetch(order, url, build, follow)

    def prefetch_url(self, context: Context, page: t.Any, path: str | None) -> str:
        """Return the URL, query included, of a request this stream will make later."""
        if path is None:
            request = self.get_http_request(
                page=PageContext(stream_context=context, next_page_token=page)
            )
            query = request.encode_params()
            return f"{request.url}?{query}" if query else request.url
        return self.build_url(path, context)

    def transform(self, row: Record) -> Record:
        """Turn one Quay object into a record; streams override this for their fields."""
        return row

    # Retries ---------------------------------------------------------------

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        error = yield 0.0  # backoff primes the generator, then sends each exception
        longest = float(self.config.get("max_retry_wait", MAX_RETRY_WAIT))
        for attempt in itertools.count():
            refuse_retry(error, longest)
            asked = retry_after_seconds(getattr(error, "response", None))
            backoff = min(longest, FIRST_RETRY_WAIT * 2**attempt)
            error = yield asked if asked is not None else backoff

    @override
    def request_decorator(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        # As the SDK's, but without backoff's own log lines: they print the exception's
        # text, which for a connection error holds the whole URL, query string included.
        return backoff.on_exception(
            self.backoff_wait_generator,
            (
                RetriableAPIError,
                requests.exceptions.Timeout,
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                ConnectionResetError,
            ),
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(func)

    @override
    def backoff_max_tries(self) -> int:
        return MAX_TRIES

    @override
    def backoff_jitter(self, value: float) -> float:
        # Jitter only ever adds, so a Retry-After is always honoured in full.
        return value + random.uniform(0, min(1.0, value / 2))

    @override
    def backoff_handler(self, details: Details) -> None:
        self.quay.progress.retries[self.name] += 1
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

    @override
    def _write_activate_version_message(self, full_table_version: int) -> None:
        # The SDK calls this as each sync starts, per parent record for a child stream and
        # before a failure could be known; tap_quay.versions writes it once, at the end.
        self.table_version = full_table_version

    def activate_table_version(self, version: int) -> None:
        """Write ACTIVATE_VERSION for this stream, after its SCHEMA if none was written."""
        self._write_schema_message()
        super()._write_activate_version_message(version)

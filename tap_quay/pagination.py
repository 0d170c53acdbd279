"""Quay's two paging schemes: the repository cursor and the tag page number."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_quay.errors import PagingError

if t.TYPE_CHECKING:
    import requests


#: Decodes a response's JSON body (the stream's own, which remembers the last one).
BodyReader = t.Callable[["requests.Response"], dict[str, t.Any]]


class RepositoryCursorPaginator(BaseAPIPaginator["str | None"]):
    """Follow ``next_page`` until a response leaves it out.

    The cursor is an opaque token that differs on every response, and Quay answers an
    expired or foreign one with page 1 again, so a loop shows up as repeated repositories,
    which the stream checks; this class only follows the cursor, and stops at one that
    comes back unchanged.
    """

    def __init__(self, body: BodyReader) -> None:
        """Start on the first page."""
        super().__init__(None)
        self.body = body

    @override
    def has_more(self, response: requests.Response) -> bool:
        return bool(self.body(response).get("next_page"))

    @override
    def get_next(self, response: requests.Response) -> str | None:
        cursor = t.cast("str | None", self.body(response).get("next_page"))
        if cursor and cursor == self.current_value:
            raise PagingError("the repository cursor came back unchanged; stopped paging there")
        return cursor


def says_more(body: dict[str, t.Any]) -> bool:
    """Read ``has_additional``, which Quay sends as a boolean (a "true" string counts too)."""
    return str(body.get("has_additional")).lower() in ("true", "1")


class TagPagePaginator(BaseAPIPaginator[int]):
    """Count pages from 1 while the answer says ``has_additional``."""

    def __init__(self, body: BodyReader) -> None:
        """Start on page 1."""
        super().__init__(1)
        self.body = body

    @override
    def has_more(self, response: requests.Response) -> bool:
        return says_more(self.body(response))

    @override
    def get_next(self, response: requests.Response) -> int:
        return self.current_value + 1

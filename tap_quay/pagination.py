"""Quay's two paging schemes: the repository cursor and the tag page number."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

if t.TYPE_CHECKING:
    import requests


class RepositoryCursorPaginator(BaseAPIPaginator["str | None"]):
    """Follow ``next_page`` until a response leaves it out.

    The cursor is an opaque token that differs on every response, and Quay answers an
    expired or foreign one with page 1 again, so a loop shows up as repeated repositories,
    which the stream checks; this class only follows the cursor.
    """

    def __init__(self) -> None:
        """Start on the first page."""
        super().__init__(None)

    @override
    def has_more(self, response: requests.Response) -> bool:
        return bool(response.json().get("next_page"))

    @override
    def get_next(self, response: requests.Response) -> str | None:
        return t.cast("str | None", response.json().get("next_page"))


class TagPagePaginator(BaseAPIPaginator[int]):
    """Count pages from 1 while the answer says ``has_additional``."""

    def __init__(self) -> None:
        """Start on page 1."""
        super().__init__(1)

    @override
    def has_more(self, response: requests.Response) -> bool:
        return response.json().get("has_additional") is True

    @override
    def get_next(self, response: requests.Response) -> int:
        return self.current_value + 1

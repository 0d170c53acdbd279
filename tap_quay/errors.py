"""Exceptions that carry Quay's answers to the place that decides what to do with them."""

from __future__ import annotations


class QuayError(Exception):
    """A known condition that stops the sync; its message is the one line the user sees."""


class InvalidTokenError(QuayError):
    """Quay rejected the token (401), or treated it as anonymous where a user was expected."""


class UnexpectedResponseError(QuayError):
    """Quay, or something in front of it, answered in a way the tap cannot use."""


class ResourceUnavailable(Exception):  # noqa: N818 - a state, not a failure
    """The token may not see this resource (403) or it does not exist (404)."""

    def __init__(self, status: int, path: str) -> None:
        """Remember the status and the URL path that answered it."""
        super().__init__(f"{status} for {path}")
        self.status = status
        self.path = path


class UnusableAnswer(Exception):  # noqa: N818 - named for what happened
    """One resource's answer cannot be used as Quay documents it; that resource fails."""


class PagingError(UnusableAnswer):
    """A listing's pages stopped making progress, so the rest of that listing is unreadable."""

"""A sample Quay server for tests and demos: recorded real responses plus rules."""

from .auth import TOKENS
from .generated import ScaleSettings
from .server import LoggedRequest, SampleQuay

__all__ = ["TOKENS", "LoggedRequest", "SampleQuay", "ScaleSettings"]

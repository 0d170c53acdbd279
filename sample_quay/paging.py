"""Opaque `next_page` tokens for the repository listing, as Quay hands them out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

REPOSITORIES_PER_PAGE = 100
TOKEN_TTL_S = 2 * 24 * 3600
_MAC_BYTES = 16


class PageTokens:
    """Issue and read signed page tokens: {start_id, nonce, issued} with an HMAC.

    Every token differs (random nonce), tokens of another server instance fail
    the signature check, and a token that is garbage, altered, empty, foreign
    or older than two days reads as None, which callers treat as page 1,
    exactly as Quay does.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """Pick a fresh signing key; `clock` gives the time used for expiry."""
        self._key = secrets.token_bytes(32)
        self._clock = clock

    def issue(self, start_id: int) -> str:
        """Return a token for the page starting at repository id `start_id`."""
        fields = {"start_id": start_id, "nonce": secrets.token_hex(8), "issued": self._clock()}
        payload = json.dumps(fields)
        # Quay's Fernet tokens end in "="; pad (JSON allows trailing blanks) so
        # ours do too and a client that forgets to URL-encode them is caught.
        while (_MAC_BYTES + len(payload)) % 3 != 2:
            payload += " "
        raw = payload.encode()
        return base64.urlsafe_b64encode(self._sign(raw) + raw).decode()

    def read(self, token: str | None) -> int | None:
        """Return the start id of a valid token, or None for anything else."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError):
            return None
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._sign(payload)):
            return None
        fields = json.loads(payload)
        if self._clock() - fields["issued"] > TOKEN_TTL_S:
            return None
        return int(fields["start_id"])

    def _sign(self, payload: bytes) -> bytes:
        """Compute the truncated HMAC of a payload."""
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

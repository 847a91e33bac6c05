"""Virtual keys: who is calling, which routes they may use, and how fast.

Keys are held only as SHA-256 digests, so a memory dump or a debug print of the
store reveals nothing a caller could reuse; lookup hashes the presented key and
does one dict probe. Per-key limits are token buckets (``token_bucket.TokenBucket``,
the one the providers' ``RateLimiter`` uses too) with an injected clock:
RPM takes one token per request up front; TPM is charged with the tokens a call
actually used (known only afterwards) and refuses new requests while the bucket
is in debt, which is how a per-minute token budget can be enforced without
guessing output lengths.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..token_bucket import TokenBucket
from .config import KeyConfig

__all__ = ["Bucket", "KeyStore", "VirtualKey", "extract_key"]


class Bucket(Protocol):
    """What a key's limit needs: a local ``token_bucket.TokenBucket``, or a bucket shared through
    Redis (``state.redis_limits.RedisTokenBucket``)."""

    def try_take(self, amount: float = 1.0) -> float | None: ...
    def wait_for_positive(self) -> float | None: ...
    def charge(self, amount: float) -> None: ...


@dataclass(slots=True)
class VirtualKey:
    """A caller: tenant and agent for the ledger, the routes it may name, its limits."""

    tenant: str
    agent: str
    routes: frozenset[str] | None = None
    rpm: Bucket | None = None
    tpm: Bucket | None = None
    is_admin: bool = False
    label: str = field(default="", repr=False)

    def allows(self, route: str) -> bool:
        return self.routes is None or route in self.routes

    def admit(self) -> float | None:
        """None if the request may go ahead, else seconds to wait (for ``retry-after``)."""
        if self.tpm is not None:
            wait = self.tpm.wait_for_positive()
            if wait is not None:
                return wait
        if self.rpm is not None:
            return self.rpm.try_take(1.0)
        return None

    def charge_tokens(self, tokens: int) -> None:
        if self.tpm is not None and tokens > 0:
            self.tpm.charge(tokens)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class KeyStore:
    """Digest → ``VirtualKey``; the admin key is a separate digest and never a tenant key."""

    def __init__(
        self,
        keys: Iterable[KeyConfig],
        admin_sha256: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        buckets: Callable[[str, int], Bucket] | None = None,
    ) -> None:
        """``buckets(name, per_minute)`` makes shared buckets (Redis, several replicas); local by default."""

        def bucket(name: str, per_minute: int | None) -> Bucket | None:
            if not per_minute:
                return None
            return buckets(name, per_minute) if buckets is not None else TokenBucket(per_minute, clock)

        self._keys: dict[str, VirtualKey] = {}
        for k in keys:
            self._keys[k.key_sha256] = VirtualKey(
                tenant=k.tenant,
                agent=k.agent,
                routes=k.routes,
                rpm=bucket(f"{k.key_sha256[:24]}:rpm", k.rpm),
                tpm=bucket(f"{k.key_sha256[:24]}:tpm", k.tpm),
                label=k.source,
            )
        self._admin_sha256 = admin_sha256
        self._admin = VirtualKey(tenant="*", agent="admin", is_admin=True, label="admin")

    def lookup(self, raw: str | None) -> VirtualKey | None:
        if not raw:
            return None
        digest = _digest(raw)
        if self._admin_sha256 is not None and digest == self._admin_sha256:
            return self._admin
        return self._keys.get(digest)

    def __len__(self) -> int:
        return len(self._keys)


def extract_key(headers: Iterable[tuple[bytes, bytes]] | Mapping[str, str]) -> str | None:
    """The presented key from ``Authorization: Bearer …`` or ``x-api-key`` (either API's way).

    Takes the raw ASGI header list (one pass, no decoding of other headers: this runs on
    every request) or, for convenience, a ``str`` mapping.
    """
    if isinstance(headers, Mapping):
        raw = [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
    else:
        raw = headers  # type: ignore[assignment]
    auth = api_key = None
    for name, value in raw:
        if name == b"authorization":
            auth = value
        elif name == b"x-api-key":
            api_key = value
    if auth:
        scheme, _, token = auth.partition(b" ")
        token = token.strip()
        if scheme.lower() == b"bearer" and token:
            return token.decode("latin-1")
    if api_key and api_key.strip():
        return api_key.strip().decode("latin-1")
    return None

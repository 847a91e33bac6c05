"""Virtual keys: hashed lookup, both header forms, token-bucket limits on an injected clock."""

from __future__ import annotations

import hashlib

from greenlang_llm.gateway.config import KeyConfig
from greenlang_llm.gateway.keys import KeyStore, extract_key
from greenlang_llm.token_bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def test_lookup_matches_only_the_hashed_key_and_admin_is_separate() -> None:
    store = KeyStore([KeyConfig("acme", "web", _digest("sk-a"))], admin_sha256=_digest("sk-admin"))
    key = store.lookup("sk-a")
    assert key is not None
    assert key.tenant == "acme"
    assert not key.is_admin
    assert store.lookup("sk-b") is None
    assert store.lookup("") is None
    admin = store.lookup("sk-admin")
    assert admin is not None
    assert admin.is_admin
    assert "sk-a" not in repr(store.__dict__)


def test_extract_key_accepts_bearer_and_x_api_key() -> None:
    assert extract_key({"authorization": "Bearer sk-1"}) == "sk-1"
    assert extract_key({"authorization": "bearer  sk-2 "}) == "sk-2"
    assert extract_key({"x-api-key": "sk-3"}) == "sk-3"
    assert extract_key({"authorization": "Basic abc"}) is None
    assert extract_key({}) is None


def test_rpm_bucket_refuses_then_refills_with_time() -> None:
    clock = Clock()
    store = KeyStore([KeyConfig("t", "a", _digest("k"), rpm=2)], clock=clock)
    key = store.lookup("k")
    assert key is not None
    assert key.admit() is None
    assert key.admit() is None
    wait = key.admit()
    assert wait is not None
    assert 29 < wait <= 30
    clock.now += 30
    assert key.admit() is None


def test_tpm_is_charged_after_the_call_and_blocks_while_in_debt() -> None:
    clock = Clock()
    store = KeyStore([KeyConfig("t", "a", _digest("k"), tpm=600)], clock=clock)
    key = store.lookup("k")
    assert key is not None
    assert key.admit() is None
    key.charge_tokens(900)  # 300 into debt: 600 tpm refills 10 per second
    wait = key.admit()
    assert wait is not None
    assert 29 < wait <= 31
    clock.now += 31
    assert key.admit() is None


def test_route_allow_list() -> None:
    store = KeyStore([KeyConfig("t", "a", _digest("k"), routes=frozenset({"cheap"}))])
    key = store.lookup("k")
    assert key is not None
    assert key.allows("cheap")
    assert not key.allows("default")


def test_bucket_never_exceeds_capacity() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)
    clock.now += 1000
    assert bucket.try_take(60) is None
    assert bucket.try_take(1) is not None

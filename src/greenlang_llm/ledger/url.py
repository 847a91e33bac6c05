"""Ledger URLs in SQLAlchemy's form, and the default location.

``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``,
``postgresql://user@host:port/db`` (``postgres://`` and ``postgresql+psycopg://``
are accepted too). ``GREENLANG_LLM_DB`` may hold a URL or a plain file path.
Query parameters pass options: ``?synchronous=full`` for SQLite, ``?schema=name``
(or any libpq option such as ``options=-csearch_path=x``) for PostgreSQL.
PostgreSQL option values are percent-decoded as libpq decodes them (``%20`` is a
space, ``+`` stays a plus) and percent-encoded again in ``LedgerURL.dsn``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["DEFAULT_DB_FILE", "ENV_VAR", "LedgerURL", "parse_ledger_url", "resolve_ledger_url"]

DEFAULT_DB_FILE = "greenlang_llm.db"
ENV_VAR = "GREENLANG_LLM_DB"
_PG_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}


@dataclass(frozen=True, slots=True)
class LedgerURL:
    kind: str
    """``"sqlite"`` or ``"postgresql"``."""
    path: str = ""
    """SQLite file path or ``:memory:``."""
    dsn: str = ""
    """PostgreSQL connection string (libpq URL without our own options)."""
    options: dict[str, str] = field(default_factory=dict)


def resolve_ledger_url(storage: str | os.PathLike[str] | None) -> str:
    """The URL to open: the argument, else ``$GREENLANG_LLM_DB``, else ``greenlang_llm.db`` in the CWD."""
    if storage is None:
        storage = os.environ.get(ENV_VAR) or DEFAULT_DB_FILE
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str) or not storage.strip():
        raise ValueError(f"ledger storage must be a URL or a file path, got {storage!r}")
    if "://" not in storage:
        if storage == ":memory:":
            return "sqlite:///:memory:"
        return "sqlite:///" + os.path.abspath(storage)  # absolute path: four slashes
    return storage


def parse_ledger_url(url: str) -> LedgerURL:
    """Split a ledger URL; an unsupported or malformed one raises ``ValueError`` naming it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"invalid ledger URL {url!r}: expected sqlite:///path.db or postgresql://...")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(
                f"invalid ledger URL {url!r}: SQLite URLs have three slashes "
                "(sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory:)"
            )
        path, _, query = rest[1:].partition("?")
        if not path:
            raise ValueError(f"invalid ledger URL {url!r}: no database file named")
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = set(options) - {"synchronous", "timeout"}
        if unknown:
            raise ValueError(f"invalid ledger URL {url!r}: unknown SQLite option(s) {sorted(unknown)}")
        if options.get("synchronous", "normal").lower() not in {"normal", "full", "extra"}:
            raise ValueError(f"invalid ledger URL {url!r}: synchronous must be normal, full or extra")
        return LedgerURL(kind="sqlite", path=path, options=options)
    if scheme in _PG_SCHEMES:
        parts = urlsplit("postgresql://" + rest)
        if not parts.hostname and not parts.path.strip("/"):
            raise ValueError(f"invalid ledger URL {url!r}: expected postgresql://user@host:port/db")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid ledger URL {url!r}: bad port") from exc
        # decoded as libpq decodes a URI query: percent-escapes only, a "+" is a plus sign
        pairs = parse_qsl(parts.query.replace("+", "%2B"), keep_blank_values=True)
        ours = {k: v for k, v in pairs if k == "schema"}
        libpq = [(k, v) for k, v in pairs if k != "schema"]
        # re-encoded, or a decoded "&", "=", "%" or space would change what libpq reads
        qs = urlencode(libpq, quote_via=quote)
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, qs, ""))
        if "schema" in ours and not ours["schema"].replace("_", "").isalnum():
            raise ValueError(f"invalid ledger URL {url!r}: schema must be letters, digits and underscores")
        return LedgerURL(kind="postgresql", dsn=dsn, options=ours)
    raise ValueError(
        f"unsupported ledger URL {url!r}: use sqlite:///file.db, sqlite:///:memory: or postgresql://user@host/db"
    )

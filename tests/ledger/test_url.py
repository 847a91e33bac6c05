from __future__ import annotations

import os

import pytest

from greenlang_llm.ledger import parse_ledger_url, resolve_ledger_url


def test_default_is_greenlang_llm_db_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENLANG_LLM_DB", raising=False)
    url = resolve_ledger_url(None)
    assert url == "sqlite:///" + os.path.abspath("greenlang_llm.db")
    assert parse_ledger_url(url).path == os.path.abspath("greenlang_llm.db")


def test_env_var_takes_a_plain_path_or_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENLANG_LLM_DB", "/tmp/x/costs.db")
    assert resolve_ledger_url(None) == "sqlite:////tmp/x/costs.db"
    monkeypatch.setenv("GREENLANG_LLM_DB", "postgresql://u@h:5433/db")
    assert resolve_ledger_url(None) == "postgresql://u@h:5433/db"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative.db", "relative.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls_follow_sqlalchemy_slashes(url: str, path: str) -> None:
    parsed = parse_ledger_url(url)
    assert (parsed.kind, parsed.path) == ("sqlite", path)


def test_sqlite_synchronous_option_is_parsed() -> None:
    assert parse_ledger_url("sqlite:///a.db?synchronous=full").options == {"synchronous": "full"}


def test_postgres_url_keeps_libpq_options_and_takes_schema() -> None:
    parsed = parse_ledger_url("postgresql://user@host:5432/db?schema=s1&sslmode=disable")
    assert parsed.kind == "postgresql"
    assert parsed.options == {"schema": "s1"}
    assert parsed.dsn == "postgresql://user@host:5432/db?sslmode=disable"


@pytest.mark.parametrize("value", ["-c search_path=a&b", "100%", "a=b", "x+y z", "  ", "", "é/?#"])
def test_postgres_libpq_options_round_trip_through_the_dsn(value: str) -> None:
    from urllib.parse import quote

    conninfo_to_dict = pytest.importorskip("psycopg.conninfo").conninfo_to_dict

    url = f"postgresql://user@host:5432/db?options={quote(value, safe='')}&schema=s1&application_name=a+b"
    parsed = parse_ledger_url(url)
    assert parsed.options == {"schema": "s1"}
    # what libpq reads from our DSN is what it would read from the URL itself
    seen = conninfo_to_dict(parsed.dsn)
    assert seen == conninfo_to_dict(url.replace("&schema=s1", ""))
    assert (seen["options"], seen["application_name"]) == (value, "a+b")


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "sqlite://relative.db", "sqlite:///", "nonsense", "postgresql://h:notaport/db",
     "sqlite:///a.db?synchronous=off", "postgresql://h/db?schema=a;drop"],
)  # fmt: skip
def test_bad_url_raises_value_error_naming_it(url: str) -> None:
    with pytest.raises(ValueError, match="ledger URL") as info:
        parse_ledger_url(url)
    assert repr(url) in str(info.value)

"""Starting a replica: services that do not answer are one clear line, URLs may come from the env."""

from __future__ import annotations

from pathlib import Path

import pytest
from scaleout_support import ENV, gateway_toml

from greenlang_llm.cli import main
from greenlang_llm.gateway.config import ConfigError, parse_config


def _config(tmp_path: Path, **overrides: str) -> Path:
    settings = {
        "port": 0,
        "database_url": f"sqlite:///{tmp_path}/l.db",
        "redis_url": "redis://127.0.0.1:6379/0",
        "prefix": "glstart:",
        "openai_url": "http://127.0.0.1:9/v1",
        **overrides,
    }
    path = tmp_path / "gw.toml"
    path.write_text(gateway_toml(**settings))  # type: ignore[arg-type]
    return path


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_unreachable_redis_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(_config(tmp_path, redis_url="redis://127.0.0.1:9/0"))]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot start: Redis at redis://127.0.0.1:9/0 is unreachable")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.postgres
def test_unreachable_ledger_database_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, database_url="postgresql://postgres@127.0.0.1:9/test")
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot start: cannot connect to the PostgreSQL ledger")
    assert err.count("\n") == 1


def test_urls_from_the_environment_override_the_file() -> None:
    data = {"server": {"redis_url": "redis://file:6379/0"}, "providers": [
        {"name": "p", "type": "openai", "model_id": "gpt-4o"}]}  # fmt: skip
    env = {"GREENLANG_REDIS_URL": "redis://env:6379/1", "GREENLANG_DATABASE_URL": "postgresql://db/x"}
    server = parse_config(data, env).server
    assert (server.redis_url, server.database_url) == ("redis://env:6379/1", "postgresql://db/x")
    assert parse_config(data, {}).server.redis_url == "redis://file:6379/0"


def test_a_redis_url_that_is_not_redis_names_the_key() -> None:
    data = {
        "server": {"redis_url": "http://x"},
        "providers": [{"name": "p", "type": "openai", "model_id": "m"}],
    }
    with pytest.raises(ConfigError, match=r"server\.redis_url: must be redis://"):
        parse_config(data, {})

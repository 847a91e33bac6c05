"""``greenlang-llm serve``: --check validates and exits; bad config is exit 2 with one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenlang_llm.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "greenlang-llm.toml"
KEYS = {"ACME_KEY": "sk-a", "BETA_KEY": "sk-b", "GREENLANG_ADMIN_KEY": "sk-admin",
        "ANTHROPIC_API_KEY": "sk-sim", "OPENAI_API_KEY": "sk-sim"}


def test_check_accepts_the_example_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--config", str(EXAMPLE), "--check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "config ok: 3 providers, 2 routes, 2 keys, 2 budgets; would listen on 127.0.0.1:4000"
    )
    assert "sk-a" not in out


def test_check_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BETA_KEY", raising=False)
    assert main(["serve", "--config", str(EXAMPLE), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: config: keys[1].key_env: environment variable BETA_KEY is not set"
    assert "Traceback" not in err


def test_bad_value_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('[[providers]]\nname = "a"\ntype = "cohere"\nmodel_id = "m"\n')
    assert main(["serve", "--config", str(config), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "providers[0].type: must be 'anthropic' or 'openai'" in err


def test_print_schema_prints_the_committed_schema_without_reading_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent.toml"
    assert main(["serve", "--config", str(missing), "--print-schema"]) == 0
    out = capsys.readouterr().out
    assert out == (Path(__file__).parents[2] / "docs" / "config.schema.json").read_text()
    assert json.loads(out)["$ref"] == "#/$defs/ConfigFile"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_starts_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(
        f'[server]\ndatabase_url = "sqlite:///{tmp_path}/ledger.db"\n'
        '[[providers]]\nname = "a"\ntype = "openai"\nmodel_id = "gpt-4o-mini"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    port = _free_port()
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-canary"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenlang_llm", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown, so the exit status is -SIGTERM
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    assert b"sk-test-canary" not in stderr
    assert b"Traceback" not in stderr

"""The `openfish accounts` and `openfish tokens` commands, against a real database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openfish.cli import app

TOKEN_RE = re.compile(r"^(ofk_tok_[0-9a-f]{32}_\S{43})$", re.MULTILINE)
ACCOUNT_RE = re.compile(r"user_[0-9a-f]{32}")
TOKEN_ID_RE = re.compile(r"tok_[0-9a-f]{32}")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("OPENFISH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def invoke(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_account_lifecycle(run: CliRunner) -> None:
    created = invoke(run, "accounts", "create", "--name", "acme", "--tier", "free", "--credits", "25")
    account_id = ACCOUNT_RE.search(created)
    assert account_id is not None
    assert TOKEN_RE.search(created) is not None
    account = account_id.group(0)

    assert "balance 125" in invoke(run, "accounts", "top-up", account, "100", "--memo", "invoice 1")
    assert "tier pro" in invoke(run, "accounts", "set-tier", account, "pro")
    assert "realtime_tts on" in invoke(run, "accounts", "set-flag", account, "realtime_tts")
    listing = invoke(run, "accounts", "list")
    assert account in listing
    assert "125" in listing
    assert "realtime_tts" in listing
    assert "realtime_tts off" in invoke(run, "accounts", "set-flag", account, "realtime_tts", "--off")


def test_token_lifecycle(run: CliRunner) -> None:
    created = invoke(run, "accounts", "create", "--name", "acme", "--no-token")
    assert TOKEN_RE.search(created) is None
    account = ACCOUNT_RE.search(created)
    assert account is not None
    issued = invoke(run, "tokens", "create", account.group(0), "--name", "ci")
    plaintext = TOKEN_RE.search(issued)
    token_id = TOKEN_ID_RE.search(issued)
    assert plaintext is not None
    assert token_id is not None
    listing = invoke(run, "tokens", "list", "--account", account.group(0))
    assert token_id.group(0) in listing
    assert plaintext.group(0) not in listing
    assert "never" in listing
    assert "revoked" in invoke(run, "tokens", "revoke", token_id.group(0))


def test_errors_exit_non_zero_with_a_message(run: CliRunner) -> None:
    assert "unknown tier" in invoke(run, "accounts", "create", "--name", "x", "--tier", "gold", code=1)
    assert "does not exist" in invoke(run, "accounts", "top-up", "user_nobody", "5", code=1)
    assert "does not exist" in invoke(run, "tokens", "revoke", "tok_nothing", code=1)
    assert "feature flag" in invoke(run, "accounts", "set-flag", "user_x", "Bad Flag!", code=1)

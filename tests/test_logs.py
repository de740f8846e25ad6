"""Log redaction: no token, URL signature, webhook secret or bearer credential survives in a log line."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from openfish.logs import (
    FORMAT,
    REDACTED,
    SENSITIVE_PARAMETERS,
    RedactionFilter,
    RequestIdFilter,
    log_config,
    redact,
)
from tests.conftest import Harness

TOKEN = "ofk_tok_0123456789abcdef0123456789abcdef_" + "Ab-_9" * 8 + "xyz"
SECRET_PART = TOKEN.rsplit("_", 1)[1]
WEBHOOK_SECRET = "whsec_" + "Zy-_8" * 8 + "q"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f'127.0.0.1:5555 - "WebSocket /api/open/tts/live?token={TOKEN}" [accepted]',
            '127.0.0.1:5555 - "WebSocket /api/open/tts/live?token=[redacted]" [accepted]',
        ),
        (
            "GET /api/open/v1/audio/abc_22050.wav?expires=1700000000&sig=3f9a0b HTTP/1.1",
            "GET /api/open/v1/audio/abc_22050.wav?expires=1700000000&sig=[redacted] HTTP/1.1",
        ),
        (
            "http://h/api/open/v1/media/lip-sync/results/job_1.mp4?expires=9&sig=deadbeef#t=1",
            "http://h/api/open/v1/media/lip-sync/results/job_1.mp4?expires=9&sig=[redacted]#t=1",
        ),
        ("/x?a=1;Key=abc;b=2", "/x?a=1;Key=[redacted];b=2"),
        (
            "/x?TOKEN=abc&apiKey=def&Access_Token=ghi",
            "/x?TOKEN=[redacted]&apiKey=[redacted]&Access_Token=[redacted]",
        ),
        # Names are compared decoded: the server reads ``%74oken`` as ``token``.
        ("/x?%74oken=abc", "/x?%74oken=[redacted]"),
        ("/x?signature=a%2Bb&password=p+q 'next'", "/x?signature=[redacted]&password=[redacted] 'next'"),
        (f"token {TOKEN} in prose", "token [redacted] in prose"),
        (f'{{"token": "{TOKEN}"}}', '{"token": "[redacted]"}'),
        ("escaped ofk%5Ftok%5F0123%5Fsecret-part.", "escaped [redacted]."),
        (f"webhook secret={WEBHOOK_SECRET}, set", "webhook secret=[redacted], set"),
        (f"< authorization: Bearer {TOKEN}", "< authorization: Bearer [redacted]"),
        ("Authorization: bearer abc.DEF~+/==", "Authorization: bearer [redacted]"),
    ],
)
def test_redact_replaces_credentials(line: str, expected: str) -> None:
    assert redact(line) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize("name", sorted(SENSITIVE_PARAMETERS))
def test_every_sensitive_parameter_is_redacted(name: str) -> None:
    assert redact(f"/p?x=1&{name}=s3cr3t&y=2") == f"/p?x=1&{name}=[redacted]&y=2"
    assert redact(f"/p?{name.upper()}=s3cr3t") == f"/p?{name.upper()}=[redacted]"


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/open/v1/audio/abc_22050.wav?expires=1700000000 200",
        "/x?keyboard=1&monkey=2&tokens=3&sigma=4",
        "token=abc outside a query string",
        "audio/pcm;rate=22050;encoding=s16le;channels=1",
        "an `Authorization: Bearer <token>` header is required.",
        "/x?token=&sig=",
        "job_0123 voice user_abcd tok_0123456789abcdef0123456789abcdef",
    ],
)
def test_redact_leaves_other_text_alone(line: str) -> None:
    assert redact(line) == line


def log_through_filter(
    log: logging.Logger, message: str, *args: object, exc_info: bool = False, stack_info: bool = False
) -> str:
    """What a handler with the redaction filter prints for ``log.error(message, *args, ...)``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactionFilter())
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error(message, *args, exc_info=exc_info, stack_info=stack_info)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_filter_redacts_the_formatted_message_across_arguments() -> None:
    log = logging.getLogger("tests.logs.arguments")
    # The path and the query arrive in separate arguments; only the whole line shows the secret.
    printed = log_through_filter(log, 'client - "WebSocket %s?%s" [accepted]', "/live", f"token={TOKEN}")
    assert printed == 'client - "WebSocket /live?token=[redacted]" [accepted]\n'


def test_filter_redacts_tracebacks_and_stacks() -> None:
    log = logging.getLogger("tests.logs.traceback")
    try:
        raise ValueError(f"fetch failed for https://x/a?sig=abc123&key={WEBHOOK_SECRET} with Bearer {TOKEN}")
    except ValueError:
        printed = log_through_filter(log, "failed", exc_info=True, stack_info=True)
    assert "Traceback (most recent call last)" in printed
    assert "Stack (most recent call last)" in printed
    assert (
        "ValueError: fetch failed for https://x/a?sig=[redacted]&key=[redacted] with Bearer [redacted]"
        in printed
    )
    for secret in ("abc123", WEBHOOK_SECRET, TOKEN, SECRET_PART):
        assert secret not in printed


def test_filter_survives_arguments_that_do_not_fit() -> None:
    log = logging.getLogger("tests.logs.misfit")
    printed = log_through_filter(log, "one %s and %s", f"token={TOKEN}")
    assert TOKEN not in printed
    assert "one %s and %s" in printed


def test_log_config_levels() -> None:
    config = log_config("debug")
    assert config["disable_existing_loggers"] is False
    assert config["loggers"]["uvicorn.error"]["level"] == logging.DEBUG
    assert config["root"]["level"] == logging.WARNING
    assert log_config("error")["root"]["level"] == logging.ERROR
    assert log_config("trace")["loggers"]["uvicorn"]["level"] == 5
    with pytest.raises(ValueError, match="unknown log level"):
        log_config("chatty")


# Run apart: dictConfig replaces the handlers of the whole process, pytest's included.
CONFIGURED_PROCESS = textwrap.dedent(
    """
    import logging, sys
    import uvicorn
    from openfish.logs import configure_logging, log_config
    from openfish.middleware import REQUEST_ID

    token = sys.argv[1]
    configure_logging("debug")
    logging.getLogger("openfish.x").info("openfish sees %s", token)
    logging.getLogger("somelib").warning("library warns about ?token=%s", token)
    logging.getLogger("somelib").info("library chatter")
    # What `openfish serve` does next: uvicorn applies the log_config it is given.
    uvicorn.Config(lambda: None, log_config=log_config("debug"), log_level="debug", access_log=False)
    REQUEST_ID.set("req_0123456789")
    handshake = '%s - "WebSocket %s" [accepted]'
    logging.getLogger("uvicorn.error").info(handshake, "127.0.0.1:1", "/live?token=" + token)
    try:
        raise RuntimeError("boom " + token)
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    """
)


def test_configured_process_logs_with_request_ids_and_without_secrets() -> None:
    done = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", CONFIGURED_PROCESS, TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stderr.splitlines()
    assert TOKEN not in done.stderr
    assert SECRET_PART not in done.stderr
    assert "library chatter" not in done.stderr
    assert any(line.endswith(f"INFO openfish.x [-] openfish sees {REDACTED}") for line in lines), lines
    assert any(
        line.endswith(f"WARNING somelib [-] library warns about ?token={REDACTED}") for line in lines
    ), lines
    assert any(
        line.endswith(
            'INFO uvicorn.error [req_0123456789] 127.0.0.1:1 - "WebSocket /live?token=[redacted]" [accepted]'
        )
        for line in lines
    ), lines
    assert f"RuntimeError: boom {REDACTED}" in lines


MIGRATION_GUIDE = Path(__file__).parents[1] / "docs" / "migration.md"


def legacy_calls_recipe() -> str:
    """The shell recipe docs/migration.md gives for counting legacy calls per account."""
    section = MIGRATION_GUIDE.read_text().split("### Finding the clients that still call legacy paths")[1]
    return section.split("```bash\n")[1].split("```")[0]


def run_recipe(script: str, directory: Path) -> str:
    """What a shell recipe prints, run in ``directory``."""
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(  # noqa: S603 (a recipe from our own docs)
        [bash, "-c", script], cwd=directory, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


@contextmanager
def access_log_file(path: Path) -> Iterator[None]:
    """``openfish.access`` records written to ``path`` as `openfish serve` prints them."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter())
    log = logging.getLogger("openfish.access")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        handler.close()


async def test_access_lines_name_the_account_and_the_recipe_counts_legacy_calls_per_account(
    harness: Harness, tmp_path: Path
) -> None:
    first, second = await harness.new_caller(), await harness.new_caller()
    log = tmp_path / "server.log"
    with access_log_file(log):
        for caller, times in ((first, 2), (second, 1)):
            for _ in range(times):
                listed = await harness.client.post("/api/open/list-models", headers=caller.headers, json={})
                assert listed.status_code == 200
        assert (await harness.client.get("/api/open/v1/voices", headers=second.headers)).status_code == 200
        refused = await harness.client.post("/api/open/list-models", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
    text = log.read_text()
    assert re.search(rf"\] POST /api/open/list-models 200 [0-9.]+ms account={first.account_id}$", text, re.M)
    assert re.search(r"\] POST /api/open/list-models 401 [0-9.]+ms account=-$", text, re.M), text
    for caller in (first, second):
        assert caller.token not in text
        assert caller.token.rsplit("_", 1)[1] not in text

    counted = await asyncio.to_thread(run_recipe, legacy_calls_recipe(), tmp_path)
    rows = [line.split() for line in counted.splitlines()]
    # Legacy calls only (not the v1 one), per account, busiest first; `-` are the refused tokens.
    assert rows[0] == ["2", f"account={first.account_id}"], counted
    assert {account: int(count) for count, account in rows} == {
        f"account={first.account_id}": 2,
        f"account={second.account_id}": 1,
        "account=-": 1,
    }

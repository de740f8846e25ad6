"""`openfish transcribe` without a server: what it refuses before any upload, how it picks the single
call or a job, the key that makes a rerun find the same job, the ETA, and following a job through a
server that answers, fails, or is briefly away (httpx's mock transport stands in for the server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import typer
from bench.server import free_port
from typer.testing import CliRunner

from openfish import cli_transcribe_jobs
from openfish.audio.encode import encode_complete
from openfish.cli import app
from openfish.cli_transcribe import _submit, _use_job, idempotency_key
from openfish.cli_transcribe_jobs import Api, Eta, Line, clock

RATE = 16000


def wav(path: Path, seconds: float) -> Path:
    path.write_bytes(encode_complete(np.zeros(round(seconds * RATE), dtype=np.float32), "wav", RATE))
    return path


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("OPENFISH_SERVER", "OPENFISH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    """`openfish transcribe ARGS` against a port nothing listens on: its exit code and stderr."""
    dead = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["transcribe", "--server", dead, "--token", "ofk_tok_x", *args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize("name", ["out.mp3", "out", "out.text"])
def test_an_unknown_output_extension_is_refused_before_any_upload(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    code, err = run(runner, str(wav(tmp_path / "a.wav", 1)), "-o", str(tmp_path / name))
    assert code == 1
    assert ".txt, .srt, .vtt or .json" in err
    assert "cannot reach" not in err  # refused before the server was asked anything
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_conflicting_options_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    audio = str(wav(tmp_path / "a.wav", 1))
    cases = [
        ((audio, "--job", "job_1"), "--job picks up"),
        (("--job", "job_1", "--sync"), "--job picks up"),
        ((audio, "--cancel"), "--cancel needs --job"),
        ((), "give the FILE"),
        ((audio, "--json", "-o", str(tmp_path / "a.json")), "--json prints"),
        (("--job", "../voices"), "is not a job id"),
    ]
    for args, message in cases:
        code, err = run(runner, *args)
        assert code == 1, args
        assert message in err, (args, err)
        assert "cannot reach" not in err


def test_a_minute_or_less_is_one_call_longer_or_unknown_is_a_job(tmp_path: Path) -> None:
    assert _use_job(wav(tmp_path / "short.wav", 59.5), None) is False
    assert _use_job(wav(tmp_path / "long.wav", 61), None) is True
    unknown = tmp_path / "unknown.mp3"
    unknown.write_bytes(b"\x00" * 2048)
    assert _use_job(unknown, None) is True
    assert _use_job(tmp_path / "long.wav", True) is False  # --sync
    assert _use_job(tmp_path / "short.wav", False) is True  # --async


def test_the_idempotency_key_follows_the_contents_and_the_options(tmp_path: Path) -> None:
    fields = {"language": "en", "words": "false"}
    first = idempotency_key(wav(tmp_path / "a.wav", 2), fields)
    assert first == idempotency_key(tmp_path / "a.wav", dict(fields))
    assert len(first) <= 255
    assert first.isascii()
    assert first != idempotency_key(tmp_path / "a.wav", {**fields, "words": "true"})
    assert first != idempotency_key(wav(tmp_path / "a.wav", 3), fields)  # same name, new contents


def test_eta_from_the_recent_rate() -> None:
    eta = Eta(window=60)
    assert eta.remaining() is None
    eta.observe(0, 0)
    assert eta.remaining() is None
    eta.observe(10, 0)
    assert eta.remaining() is None  # no progress yet: no guess
    eta.observe(20, 10)
    assert eta.remaining() == pytest.approx(180)  # 10 % in 20 s, 90 % to go
    faster = Eta(window=60)
    faster.observe(0, 0)
    faster.observe(100, 10)
    for t in range(110, 180, 10):
        faster.observe(t, 10 + (t - 100))
    assert faster.remaining() == pytest.approx(20, abs=0.5)  # the old slow start has left the window


def test_clock() -> None:
    assert clock(0) == "0:00"
    assert clock(75.4) == "1:15"
    assert clock(3725) == "1:02:05"


Handler = Callable[[httpx.Request], httpx.Response]


def api(handler: Handler) -> Api:
    return Api(httpx.Client(transport=httpx.MockTransport(handler)), "http://openfish.test", "ofk_tok_x")


def job(status: str, progress: int = 0, **extra: Any) -> dict[str, Any]:
    return {"id": "job_1", "status": status, "progress": progress} | extra


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_transcribe_jobs, "POLL_SECONDS", 0.0)


def test_follow_rides_out_a_restart_and_returns_the_finished_job() -> None:
    answers: list[httpx.Response | httpx.TransportError] = [
        httpx.Response(200, json=job("processing", 40)),
        httpx.ConnectError("connection refused"),
        httpx.Response(503, json={"code": "unavailable", "message": "starting"}),
        httpx.Response(200, json=job("processing", 80)),
        httpx.Response(200, json=job("succeeded", 100, transcript={"text": "hi"})),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, httpx.TransportError):
            raise answer
        return answer

    with Line() as line:
        done = api(handler).follow(job("queued"), line, "resume hint")
    assert done["status"] == "succeeded"
    assert answers == []
    assert {request.url.path for request in seen} == {"/api/open/v1/speech/transcriptions/jobs/job_1"}
    assert all(request.headers["Authorization"] == "Bearer ofk_tok_x" for request in seen)


def test_follow_gives_up_on_a_server_that_stays_away(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_transcribe_jobs, "UNREACHABLE_SECONDS", 0.0)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with Line() as line, pytest.raises(typer.Exit):
        api(handler).follow(job("processing", 10), line, "pick it up again with: RESUME")
    err = capsys.readouterr().err
    assert "has not answered" in err
    assert "RESUME" in err


def test_a_refusal_while_following_ends_with_the_servers_message(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "code": "not_found",
            "message": "transcription job job_1 does not exist",
            "requestId": "req_9",
        }
        return httpx.Response(404, json=body)

    with Line() as line, pytest.raises(typer.Exit):
        api(handler).follow(job("queued"), line, "")
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "req_9" in err


def test_signed_downloads_go_without_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="WEBVTT\n")

    client = api(handler)
    assert client.download("/api/open/v1/speech/transcriptions/results/job_1.vtt?sig=s") == "WEBVTT\n"
    assert client.download("https://bucket.example/job_1.vtt?X-Amz-Signature=s") == "WEBVTT\n"
    assert str(seen[0].url).startswith("http://openfish.test/api/open/v1/speech/transcriptions/results/")
    assert seen[1].url.host == "bucket.example"
    assert all("Authorization" not in request.headers for request in seen)


def test_the_submit_carries_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        request.read()
        return httpx.Response(202, json=job("queued"))

    answer = api(handler).submit(iter([b"body"]), "multipart/form-data; boundary=b", "key-1")
    assert answer == job("queued")
    assert seen[0].headers["Idempotency-Key"] == "key-1"
    assert seen[0].url.path == "/api/open/v1/speech/transcriptions/jobs"


def test_a_rerun_after_a_failed_or_canceled_job_is_a_new_try(tmp_path: Path) -> None:
    audio = wav(tmp_path / "a.wav", 2)
    fields = {"language": "en", "words": "false"}
    base = idempotency_key(audio, fields)
    # The server: each key's first answer is replayed (the job as submitted); the jobs have ended since.
    replayed = {base: "job_1", f"{base}-after-job_1": "job_2"}
    now = {
        "job_1": job("failed", id="job_1", error="the worker crashed"),
        "job_2": job("canceled", id="job_2"),
    }
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=now[request.url.path.rsplit("/", 1)[1]])
        request.read()
        key = request.headers["Idempotency-Key"]
        keys.append(key)
        if key in replayed:
            answer = job("queued", id=replayed[key])
            return httpx.Response(202, json=answer, headers={"Idempotent-Replayed": "true"})
        return httpx.Response(202, json=job("queued", id="job_3"))

    assert _submit(api(handler), audio, fields)["id"] == "job_3"
    assert keys == [base, f"{base}-after-job_1", f"{base}-after-job_2"]
    assert all(len(key) <= 255 for key in keys)

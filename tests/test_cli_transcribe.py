"""`openfish transcribe` against real processes: ``openfish serve`` (no embedded worker) and an
``openfish worker`` on one SQLite file. A short clip is one call; a long one (or ``--async``) goes
through a transcription job whose result is written by the output's extension; a rerun finds the same
job; Ctrl-C leaves the job on the server and ``--job ID`` picks it up, after a worker restart too."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from openfish.audio.decode import decode_audio
from openfish.audio.encode import encode_complete
from openfish.cli import app
from tests.captions import assert_timed_inside, parse_srt, parse_vtt
from tests.processes import API, TOKEN_RE, Processes, auth, processes

pytestmark = pytest.mark.slow

PHRASE = "Good morning, the train leaves at nine from platform four."
JOBS = f"{API}/speech/transcriptions/jobs"
JOB_RE = re.compile(r"Job (job_\w+):")
LONG_SECONDS = 70.0


@dataclass
class Openfish:
    """The processes, the first account's token, and the worker now running (if any)."""

    procs: Processes
    token: str
    worker: subprocess.Popen[bytes] | None

    def jobs(self) -> list[dict[str, Any]]:
        response = httpx.get(self.procs.base + JOBS, params={"limit": 100}, headers=auth(self.token))
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture(scope="module")
def openfish(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Openfish]:
    with processes(tmp_path_factory.mktemp("cli-transcribe"), JOBS__EMBEDDED_WORKER="false") as procs:
        server = procs.serve()
        token = TOKEN_RE.search(procs.log_of(server))
        assert token is not None
        yield Openfish(procs, token.group(1), procs.worker())


@dataclass(frozen=True)
class Clips:
    short: Path
    long: Path
    spoken: float  # seconds of the phrase


@pytest.fixture(scope="module")
def clips(openfish: Openfish, tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """The phrase as Piper says it (a few seconds), and twice with silence up to 70 s."""
    response = httpx.post(
        openfish.procs.base + f"{API}/speech/tts",
        json={"text": PHRASE, "format": "wav"},
        headers=auth(openfish.token),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    root = tmp_path_factory.mktemp("clips")
    short = root / "short.wav"
    short.write_bytes(response.content)
    speech = decode_audio(response.content)
    return Clips(short, long_clip(root / "long.wav", response.content), speech.duration_seconds)


def long_clip(path: Path, wav: bytes, seconds: float = LONG_SECONDS) -> Path:
    speech = decode_audio(wav)
    gap = np.zeros(speech.sample_rate * 3, dtype=np.float32)
    samples = np.concatenate([gap, speech.samples, gap, speech.samples])
    samples = np.pad(samples, (0, round(seconds * speech.sample_rate) - samples.size))
    path.write_bytes(encode_complete(samples, "wav", speech.sample_rate))
    return path


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("OPENFISH_SERVER", "OPENFISH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def transcribe(runner: CliRunner, openfish: Openfish, *args: str) -> tuple[int, str, str]:
    """`openfish transcribe ARGS` in-process: exit code, stdout, stderr."""
    result = runner.invoke(
        app,
        ["transcribe", "--server", openfish.procs.base, "--token", openfish.token, "--language", "en", *args],
    )
    return result.exit_code, result.stdout, result.stderr


def test_a_short_clip_is_one_call(
    runner: CliRunner, openfish: Openfish, clips: Clips, tmp_path: Path
) -> None:
    before = len(openfish.jobs())
    target = tmp_path / "short.srt"
    code, _out, err = transcribe(runner, openfish, str(clips.short), "-o", str(target))
    assert code == 0, err
    assert "quota remaining" in err
    assert "Job" not in err
    assert len(openfish.jobs()) == before
    cues = parse_srt(target.read_text(encoding="utf-8"))  # made here, from the answer's segments
    assert_timed_inside(cues, clips.spoken)
    assert "train" in " ".join(text for _start, _end, text in cues).lower()


def test_long_audio_goes_through_one_job_whatever_is_written(
    runner: CliRunner, openfish: Openfish, clips: Clips, tmp_path: Path
) -> None:
    before = {job["id"] for job in openfish.jobs()}
    written: dict[str, str] = {}
    ids = set()
    for suffix in (".srt", ".vtt", ".json", ".txt"):
        target = tmp_path / f"long{suffix}"
        code, out, err = transcribe(runner, openfish, str(clips.long), "-o", str(target))
        assert code == 0, err
        assert out == ""
        found = JOB_RE.search(err)
        assert found is not None, err
        ids.add(found.group(1))
        written[suffix] = target.read_text(encoding="utf-8")
    # Every rerun of the same file and options found the first job (its Idempotency-Key): one job, one charge.
    assert len(ids) == 1
    (job_id,) = ids
    assert {job["id"] for job in openfish.jobs()} - before == {job_id}
    job = httpx.get(f"{openfish.procs.base}{JOBS}/{job_id}", headers=auth(openfish.token)).json()
    assert job["status"] == "succeeded"
    assert job["creditsUsed"] == 70
    # The captions are the job's own (downloaded from its signed links), and parse as a player reads them.
    srt_cues = parse_srt(written[".srt"])
    vtt_cues = parse_vtt(written[".vtt"])
    assert_timed_inside(srt_cues, LONG_SECONDS)
    assert_timed_inside(vtt_cues, LONG_SECONDS)
    assert srt_cues == vtt_cues
    assert written[".srt"] == httpx.get(job["captions"]["srtUrl"]).text
    transcript = json.loads(written[".json"])
    assert transcript["duration"] == pytest.approx(LONG_SECONDS, abs=0.1)
    assert transcript["segments"]
    assert "credits_used" not in transcript  # the transcript, not the bill
    assert transcript["segments"][0]["start"] >= 2.5  # the speech starts after 3 s of silence
    assert written[".txt"] == transcript["text"] + "\n"
    assert "train" in written[".txt"].lower()


def test_sync_and_async_override_the_length(
    runner: CliRunner, openfish: Openfish, clips: Clips, tmp_path: Path
) -> None:
    before = len(openfish.jobs())
    code, out, err = transcribe(runner, openfish, str(clips.long), "--sync", "--json")
    assert code == 0, err
    assert "quota remaining" in err
    assert json.loads(out)["duration"] == pytest.approx(LONG_SECONDS, abs=0.1)
    assert len(openfish.jobs()) == before
    code, out, err = transcribe(runner, openfish, str(clips.short), "--async")
    assert code == 0, err
    assert JOB_RE.search(err) is not None
    assert "train" in out.lower()
    assert len(openfish.jobs()) == before + 1


def test_a_bad_extension_is_refused_before_the_upload(
    runner: CliRunner, openfish: Openfish, clips: Clips, tmp_path: Path
) -> None:
    before = len(openfish.jobs())
    code, _out, err = transcribe(runner, openfish, str(clips.long), "-o", str(tmp_path / "long.mp3"))
    assert code == 1
    assert ".txt, .srt, .vtt or .json" in err
    assert len(openfish.jobs()) == before
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_the_job_and_job_id_picks_it_up(
    runner: CliRunner, openfish: Openfish, clips: Clips, tmp_path: Path
) -> None:
    procs = openfish.procs
    # No worker while the commands wait: their jobs stay queued, whatever the machine's speed.
    assert openfish.worker is not None
    procs.terminate(openfish.worker)
    openfish.worker = None
    kept = long_clip(tmp_path / "kept.wav", clips.short.read_bytes(), seconds=75.0)
    dropped = long_clip(tmp_path / "dropped.wav", clips.short.read_bytes(), seconds=80.0)
    kept_job, said = interrupt(openfish, kept, tmp_path / "kept.txt")
    assert f"job {kept_job} goes on on the server" in said
    assert f"openfish transcribe --job {kept_job} --server {procs.base} -o {tmp_path / 'kept.txt'}" in said
    dropped_job, said = interrupt(openfish, dropped, tmp_path / "dropped.srt")
    assert f"openfish transcribe --job {dropped_job} --cancel" in said
    code, out, err = transcribe(runner, openfish, "--job", dropped_job, "--cancel")
    assert code == 0, err
    assert out.strip() == f"{dropped_job}: canceled"
    assert list(tmp_path.glob("*.txt")) == list(tmp_path.glob("*.srt")) == []

    openfish.worker = procs.worker()  # a worker comes (back) and takes the queued job
    code, _out, err = transcribe(runner, openfish, "--job", kept_job, "-o", str(tmp_path / "kept.txt"))
    assert code == 0, err
    assert f"Job {kept_job}:" in err
    assert "train" in (tmp_path / "kept.txt").read_text(encoding="utf-8").lower()
    code, _out, err = transcribe(runner, openfish, "--job", dropped_job, "-o", str(tmp_path / "dropped.srt"))
    assert code == 1
    assert f"job {dropped_job} was canceled" in err
    # The same command as the canceled one is a new try: a new job, not the canceled one again.
    code, _out, err = transcribe(runner, openfish, str(dropped), "-o", str(tmp_path / "dropped.srt"))
    assert code == 0, err
    retried = JOB_RE.search(err)
    assert retried is not None, err
    assert retried.group(1) not in (kept_job, dropped_job)
    assert_timed_inside(parse_srt((tmp_path / "dropped.srt").read_text(encoding="utf-8")), 80.0)


def interrupt(openfish: Openfish, audio: Path, target: Path) -> tuple[str, str]:
    """Start `openfish transcribe AUDIO -o TARGET` as its own process, Ctrl-C it once it follows
    its (queued) job: the job's id and what the command said."""
    procs = openfish.procs
    before = {job["id"] for job in openfish.jobs()}
    command = procs.spawn(
        "cli",
        ["transcribe", str(audio), "-o", str(target), "--language", "en"],
        SERVER=procs.base,
        TOKEN=openfish.token,
    )
    job_id = wait_for_new_job(openfish, before)
    time.sleep(3)  # the 202 is on its way back; the command is now following the job
    command.send_signal(signal.SIGINT)
    assert command.wait(timeout=30) == 130, procs.log_of(command)
    assert not target.exists()
    return job_id, procs.log_of(command)


def wait_for_new_job(openfish: Openfish, before: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [job for job in openfish.jobs() if job["id"] not in before]
        if new:
            assert new[0]["status"] == "queued", new
            return str(new[0]["id"])
        time.sleep(0.2)
    raise AssertionError("the command submitted no job")


def test_an_unknown_job_is_refused(runner: CliRunner, openfish: Openfish) -> None:
    code, _out, err = transcribe(runner, openfish, "--job", "job_" + "0" * 32)
    assert code == 1
    assert "not_found" in err

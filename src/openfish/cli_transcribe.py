"""``openfish transcribe FILE``: speech to text through a running server.

Audio longer than a minute (or whose length its headers do not give) goes through a transcription
job: the upload, then the job followed to its end with its progress and an ETA. Ctrl-C leaves the job
running and says how to pick it up again (``--job ID``); the upload carries an ``Idempotency-Key``
made from the file's contents and the options, so running the same command again after a dropped
connection finds the same job instead of starting a second one. Shorter audio, or any with
``--sync``, is one call that answers with the whole transcript. The result is written by the output
file's extension (``.txt``, ``.srt``, ``.vtt``, ``.json``) or, without ``-o``, printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import httpx
import typer
from rich.markup import escape

from openfish.audio.decode import probe_duration
from openfish.cli_transcribe_jobs import CHUNK, Api, Line, multipart
from openfish.cli_tts import DEFAULT_SERVER, check_target, console, errors, fail, temp_path
from openfish.engines.base import Segment
from openfish.services.asr.captions import captions

#: What each output extension gets.
OUTPUT_KINDS = {".txt": "text", ".srt": "srt", ".vtt": "vtt", ".json": "json"}
#: Longer audio goes through a job, so that no single request is held open while it is transcribed.
SYNC_UP_TO_SECONDS = 60.0
#: Tries of one file and options that ended without a transcript before a rerun gives up.
RETRIES = 10
#: What a job id may look like (it goes into a URL path).
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
#: Keys of a transcription answer that are its bill, not the transcript (left out of .json).
BILL = ("credits_used", "quota_remaining")


def _output_kind(output: Path | None, as_json: bool) -> str:
    """What to write (checked before anything is uploaded or charged)."""
    if output is None:
        return "json" if as_json else "text"
    if as_json:
        fail("--json prints the JSON; to write it to a file, name the file -o NAME.json")
    kind = OUTPUT_KINDS.get(output.suffix.lower())
    if kind is None:
        fail(
            f"cannot tell what to write to {escape(str(output))}: "
            f"name the output .txt, .srt, .vtt or .json (got {escape(output.suffix or 'no extension')})"
        )
    check_target(output)
    return kind


def idempotency_key(path: Path, fields: dict[str, str]) -> str:
    """The same for the same file contents, name and options, so that a rerun gets the same job."""
    content = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            content.update(chunk)
    identity = json.dumps({"sha256": content.hexdigest(), "name": path.name, **fields}, sort_keys=True)
    return "openfish-transcribe-" + hashlib.sha256(identity.encode()).hexdigest()


def _use_job(file: Path, sync: bool | None) -> bool:
    if sync is not None:
        return not sync
    seconds = probe_duration(file)
    return seconds is None or seconds > SYNC_UP_TO_SECONDS


def _job_failure(job: dict[str, Any]) -> str:
    """Why a job did not succeed, as one escaped line."""
    if job["status"] == "canceled":
        return f"job {escape(job['id'])} was canceled"
    error = job.get("error")
    if isinstance(error, dict):
        detail = f"{error.get('message')} ({error.get('code')})"
    else:
        detail = str(error or "no reason given")
    return f"job {escape(job['id'])} failed: {escape(detail)}"


class Outcome(NamedTuple):
    """A finished transcription: the transcript object, a job's signed caption links (None for the
    single call), and a line on what it was and cost."""

    transcript: dict[str, Any]
    links: dict[str, Any] | None
    summary: str


def _render(kind: str, outcome: Outcome, api: Api) -> str:
    """The output's text: a job's own captions when it has them, else made here from the segments."""
    transcript = outcome.transcript
    if kind == "json":
        return json.dumps(transcript, ensure_ascii=False, indent=2) + "\n"
    if kind == "text":
        return str(transcript["text"]) + "\n"
    if outcome.links is not None:
        return api.download(outcome.links[f"{kind}Url"])
    segments = [Segment(start=s["start"], end=s["end"], text=s["text"]) for s in transcript["segments"]]
    return captions(segments, kind)


def _write(output: Path, text: str) -> None:
    """Into a temporary file beside ``output``, renamed into place once complete."""
    temp = temp_path(output)
    try:
        temp.write_text(text, encoding="utf-8", newline="")
        os.replace(temp, output)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        fail(f"cannot write {escape(str(output))}: {escape(str(exc))}")


@dataclass(frozen=True)
class Target:
    """Where the result goes, and how the command was asked (to tell how to pick a job up again)."""

    server: str
    output: Path | None
    as_json: bool

    def resume(self, job_id: str) -> str:
        """The command that follows ``job_id`` again and writes the same output."""
        command = f"openfish transcribe --job {job_id}"
        if self.server != DEFAULT_SERVER:
            command += f" --server {self.server}"
        if self.output is not None:
            command += f" -o {self.output}"
        elif self.as_json:
            command += " --json"
        return escape(command)


def transcribe(
    token: Annotated[str, typer.Option(envvar="OPENFISH_TOKEN", help="API token.", show_default=False)],
    file: Annotated[
        Path | None,
        typer.Argument(exists=True, dir_okay=False, help="Audio or video file.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Write the result here, by its extension: .txt, .srt, .vtt or .json "
            "(default: print the text).",
            show_default=False,
        ),
    ] = None,
    job_id: Annotated[
        str | None,
        typer.Option("--job", help="Follow this job (job_...) again instead of uploading; write its result."),
    ] = None,
    sync: Annotated[
        bool | None,
        typer.Option(
            "--sync/--async",
            help="--sync: one call whatever the length; --async: a job whatever the length "
            "(default: a job for audio over a minute, or of unknown length).",
            show_default=False,
        ),
    ] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="With --job: cancel that job.")] = False,
    server: Annotated[str, typer.Option(envvar="OPENFISH_SERVER", help="Server URL.")] = DEFAULT_SERVER,
    language: Annotated[str, typer.Option(help="Language code, or auto.")] = "auto",
    words: Annotated[bool, typer.Option("--words/--no-words", help="Word timestamps.")] = False,
    model: Annotated[str | None, typer.Option(help="e.g. whisper-base, whisper-tiny-en.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the transcript as JSON.")] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for any one answer (with --sync: the transcript).")
    ] = 3600.0,
) -> None:
    """Transcribe FILE (or pick up --job ID); print the text or write -o NAME.txt|srt|vtt|json."""
    kind = _output_kind(output, as_json)
    if job_id is not None and (file is not None or sync is not None):
        fail("--job picks up a job already submitted: give no FILE, --sync or --async with it")
    if cancel and job_id is None:
        fail("--cancel needs --job ID")
    if job_id is not None and not JOB_ID.fullmatch(job_id):
        fail(f"{escape(job_id)} is not a job id (job_...)")
    target = Target(server.rstrip("/"), output, as_json)
    fields = {"language": language, "words": "true" if words else "false"}
    if model is not None:
        fields["model"] = model
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
            api = Api(client, target.server, token)
            if cancel and job_id is not None:
                job = api.cancel(job_id)
                console.print(f"{escape(job['id'])}: {escape(job['status'])}", highlight=False)
                return
            if job_id is not None:
                outcome = _follow(api, api.job(job_id), target)
            elif file is None:
                fail("give the FILE to transcribe, or --job ID to pick up a job")
            elif _use_job(file, sync):
                outcome = _follow(api, _submit(api, file, fields), target)
            else:
                outcome = _at_once(api, file, fields)
            text = _render(kind, outcome, api)
    except httpx.TimeoutException as exc:
        fail(f"timed out talking to {escape(server)} ({type(exc).__name__}); try a larger --timeout")
    except httpx.TransportError as exc:
        fail(f"cannot reach the server at {escape(server)}: {escape(str(exc) or type(exc).__name__)}")
    except httpx.InvalidURL as exc:
        fail(f"invalid --server {escape(server)}: {escape(str(exc))}")
    summary = outcome.summary
    if output is None:
        console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    else:
        _write(output, text)
        summary = f"Wrote {escape(str(output))}. {summary}"
    errors.print(summary, highlight=False, soft_wrap=True)


def _at_once(api: Api, file: Path, fields: dict[str, str]) -> Outcome:
    """The single call: its transcript, no caption links, and what it cost."""
    try:
        with Line() as line:
            body, content_type = multipart(file, fields, secrets.token_hex(16), line, "transcribing")
            answer = api.transcribe_now(body, content_type)
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]; nothing was written.")
        raise typer.Exit(130) from None
    return Outcome(
        {key: value for key, value in answer.items() if key not in BILL},
        None,
        f"{answer['duration']:.1f} s of {escape(answer['language'])} audio; "
        f"{answer['credits_used']} credits used, {answer['quota_remaining']} quota remaining.",
    )


def _submit(api: Api, file: Path, fields: dict[str, str]) -> dict[str, Any]:
    """Upload ``file`` as a job; the job as the server accepted it."""
    base = idempotency_key(file, fields)
    key = base
    try:
        for _ in range(RETRIES):
            with Line() as line:
                # The boundary comes from the key too, so that a rerun sends the very same bytes.
                body, content_type = multipart(file, fields, key[-32:], line, "checking the audio")
                job = api.submit(body, content_type, key)
            if job["status"] not in ("failed", "canceled"):
                return job
            # The key found an earlier try that ended without a transcript: this run is a new try,
            # under a key of its own (so that a rerun finds it in turn).
            key = f"{base}-after-{job['id']}"
    except KeyboardInterrupt:
        errors.print(
            "[red]interrupted[/red] before the job was confirmed; run the same command again: "
            "the same file and options find the same job, not a second one.",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    return fail(f"this file and these options have failed {RETRIES} times; the last: {_job_failure(job)}")


def _follow(api: Api, job: dict[str, Any], target: Target) -> Outcome:
    """Follow ``job`` to its end: its transcript, caption links and what it cost."""
    resume = target.resume(job["id"])
    try:
        with Line() as line:
            job = api.follow(job, line, f"pick it up again with: {resume}")
    except KeyboardInterrupt:
        errors.print(
            f"[red]interrupted[/red]; job {escape(job['id'])} goes on on the server (and is charged when "
            f"it succeeds).\n  Pick it up again with: {resume}\n"
            f"  Or cancel it with: openfish transcribe --job {escape(job['id'])} --cancel",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    if job["status"] != "succeeded":
        fail(_job_failure(job))
    transcript = job["transcript"]
    return Outcome(
        {key: value for key, value in transcript.items() if key not in BILL},
        job.get("captions"),
        f"Job {escape(job['id'])}: {transcript['duration']:.1f} s of {escape(transcript['language'])} "
        f"audio; {job['creditsUsed']} credits used.",
    )

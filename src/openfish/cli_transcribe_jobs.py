"""The network half of ``openfish transcribe``: the streamed upload, a transcription job followed to
its end, and the signed caption downloads, all shown on one line of standard error that says what is
happening now (the upload, then the server's work: a job's progress with an ETA, or a sync call's
elapsed time), never a finished bar while the server still works.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from openfish.cli_tts import describe_error, errors, fail

SYNC_PATH = "/api/open/v1/speech/transcriptions"
JOBS_PATH = "/api/open/v1/speech/transcriptions/jobs"
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
CHUNK = 256 * 1024
#: How often a job is asked how far it got.
POLL_SECONDS = 1.0
#: How long the server may stay unreachable (a restart, a dropped network) while a job is followed.
UNREACHABLE_SECONDS = 120.0


class Line:
    """One transient line on standard error, replaced phase by phase."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),  # pulses while the total is unknown: work under way, no made-up fraction
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
            disable=not errors.is_terminal,  # a log or a pipe gets the outcome, not frames of a line
        )
        self._task: TaskID | None = None

    def __enter__(self) -> Line:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def phase(self, description: str, total: float | None = None, detail: str = "") -> None:
        """Start a new phase (its own elapsed time); ``total`` None while its size is unknown."""
        # A new task, because rich cannot set a task's total back to unknown.
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, detail=detail)

    def update(self, completed: float, detail: str, description: str | None = None) -> None:
        """Move the current phase on."""
        assert self._task is not None, "phase() first"
        self._progress.update(self._task, completed=completed, detail=detail, description=description)


def multipart(
    path: Path, fields: dict[str, str], boundary: str, line: Line, then: str
) -> tuple[Iterator[bytes], str]:
    """A streamed multipart body (the file is never read whole), and its content type; ``line``
    shows the upload, then ``then`` once the last byte has gone out."""
    size = path.stat().st_size
    # As browsers do: a quote or line break would end the header early.
    quoted = path.name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

    def body() -> Iterator[bytes]:
        line.phase("uploading", total=size, detail=f"0/{decimal(size)}")
        for name, value in fields.items():
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        sent = 0
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                sent += len(chunk)
                line.update(sent, f"{decimal(sent)}/{decimal(size)}")
                yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()
        line.phase(then)

    return body(), f"multipart/form-data; boundary={boundary}"


class Eta:
    """Time left, from how fast progress (0–100) moved over about the last ``window`` seconds."""

    def __init__(self, window: float = 60.0) -> None:
        self._window = window
        self._samples: deque[tuple[float, float]] = deque()

    def observe(self, now: float, progress: float) -> None:
        """Record ``progress`` at monotonic time ``now``."""
        self._samples.append((now, progress))
        # Keep one sample at or beyond the window's edge, so the rate spans the whole window.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def remaining(self) -> float | None:
        """Seconds left at the recent rate; None until progress has moved."""
        if len(self._samples) < 2:
            return None
        (then, before), (now, latest) = self._samples[0], self._samples[-1]
        if latest <= before or now <= then:
            return None
        return (100.0 - latest) * (now - then) / (latest - before)


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class Api:
    """The calls ``openfish transcribe`` makes, on one connection pool, as one account."""

    client: httpx.Client
    server: str
    token: str

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _json(self, response: httpx.Response, *ok: int) -> dict[str, Any]:
        """The answer's JSON object; any other status ends the command with the server's message."""
        if response.status_code not in ok:
            fail(describe_error(response))
        answer: dict[str, Any] = response.json()
        return answer

    def transcribe_now(self, body: Iterator[bytes], content_type: str) -> dict[str, Any]:
        """The single call: the whole transcript in one answer."""
        headers = {**self._auth(), "Content-Type": content_type}
        return self._json(self.client.post(self.server + SYNC_PATH, content=body, headers=headers), 200)

    def submit(self, body: Iterator[bytes], content_type: str, key: str) -> dict[str, Any]:
        """Create the job or, with a key already used for this upload, find the same job; either
        way, the job as it is now."""
        headers = {**self._auth(), "Content-Type": content_type, "Idempotency-Key": key}
        response = self.client.post(self.server + JOBS_PATH, content=body, headers=headers)
        job = self._json(response, 202)
        if response.headers.get("Idempotent-Replayed") == "true":
            return self.job(job["id"])  # the replayed answer is the job as it was at its submit
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET …/jobs/{id}``."""
        return self._json(self._get_job(job_id), 200)

    def _get_job(self, job_id: str) -> httpx.Response:
        return self.client.get(f"{self.server}{JOBS_PATH}/{job_id}", headers=self._auth())

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST …/jobs/{id}/cancel``: the job as the server then reports it."""
        response = self.client.post(f"{self.server}{JOBS_PATH}/{job_id}/cancel", headers=self._auth())
        return self._json(response, 200)

    def download(self, url: str) -> str:
        """A signed download (absolute, or relative to the server) as text; the signature is the
        credential, so the token is not sent (the URL may point at object storage)."""
        response = self.client.get(httpx.URL(self.server + "/").join(url))
        if response.status_code != 200:
            fail(describe_error(response))
        return response.text

    def follow(self, job: dict[str, Any], line: Line, hint: str) -> dict[str, Any]:
        """Poll ``job`` until it ends, showing its progress and ETA; ride out a server that is briefly
        unreachable (a restart). Returns the job in its final state; ``hint`` (how to resume) ends
        the message if the server stays away."""
        eta = Eta()
        down_since: float | None = None
        shown = ""
        while job["status"] not in TERMINAL:
            shown = _show(job, line, eta, shown)
            time.sleep(POLL_SECONDS)
            answer, problem = self._poll(job["id"])
            if answer is not None:
                job, down_since = answer, None
            elif down_since is None:
                down_since = time.monotonic()
                line.phase(f"server unreachable ({problem}); retrying")
                shown = "unreachable"
            elif time.monotonic() - down_since > UNREACHABLE_SECONDS:
                fail(f"the server has not answered for {UNREACHABLE_SECONDS:.0f} s ({problem})\n  {hint}")
        return job

    def _poll(self, job_id: str) -> tuple[dict[str, Any] | None, str]:
        """The job now, or None and why the server could not say (a refusal ends the command)."""
        try:
            response = self._get_job(job_id)
        except httpx.TransportError as exc:
            return None, escape(str(exc) or type(exc).__name__)
        if response.status_code in (502, 503, 504):
            return None, f"HTTP {response.status_code}"
        return self._json(response, 200), ""


def _show(job: dict[str, Any], line: Line, eta: Eta, shown: str) -> str:
    """Put ``job``'s state on the line; returns the status shown."""
    status = str(job["status"])
    queued = status == "queued"
    if status != shown:
        line.phase("waiting in the queue" if queued else "transcribing", total=None if queued else 100)
    if not queued:
        progress = float(job.get("progress") or 0)
        eta.observe(time.monotonic(), progress)
        left = eta.remaining()
        line.update(progress, f"{progress:.0f}%  ETA {clock(left) if left is not None else '…'}")
    return status

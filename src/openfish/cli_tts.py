"""``openfish tts``: synthesize speech on a running openfish server and save the audio to a file.

The audio is written as it streams, into a hidden temporary file beside the target that is renamed into
place only once the whole stream has arrived; a refused request, a broken stream or an interrupt leaves
no output file behind (and no stale temporary one).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    FileSizeColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

AudioFormat = Literal["mp3", "wav", "pcm", "opus", "aac", "flac"]

DEFAULT_SERVER = "http://127.0.0.1:8000"
TTS_PATH = "/api/open/v1/speech/tts"
#: Output file extensions the format is inferred from when ``--format`` is not given.
FORMAT_BY_SUFFIX: dict[str, AudioFormat] = {
    ".mp3": "mp3",
    ".wav": "wav",
    ".pcm": "pcm",
    ".opus": "opus",
    ".ogg": "opus",
    ".aac": "aac",
    ".flac": "flac",
}
#: What the API answers when no format is sent; used for outputs with no recognised extension.
FALLBACK_FORMAT: AudioFormat = "mp3"

console = Console()
errors = Console(stderr=True)


@dataclass(frozen=True)
class Usage:
    """What the server reported it billed for a request (from the response headers)."""

    characters: str
    credits: str
    quota_remaining: str

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> Usage:
        """Read the ``X-Characters-Used`` / ``X-Credits-Used`` / ``X-Quota-Remaining`` headers."""
        return cls(
            characters=headers.get("X-Characters-Used", "?"),
            credits=headers.get("X-Credits-Used", "?"),
            quota_remaining=headers.get("X-Quota-Remaining", "?"),
        )


def fail(message: str) -> NoReturn:
    """Print ``message`` (already escaped for rich markup) as an error and exit with status 1."""
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


def _read_text(text: str | None, file: Path | None) -> str:
    """The text to say, from the argument, ``-`` (standard input) or ``--file``."""
    if text is not None and file is not None:
        fail("give the text as an argument or with --file, not both")
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {escape(str(file))}: {escape(str(exc))}")
    if text is None:
        fail("no text: give it as an argument, '-' for standard input, or --file PATH")
    if text == "-":
        return sys.stdin.read()
    return text


def choose_format(output: Path, requested: AudioFormat | None) -> AudioFormat:
    """The format to ask for: ``requested``, else the one the output's extension names, else mp3."""
    inferred = FORMAT_BY_SUFFIX.get(output.suffix.lower())
    if requested is not None:
        if inferred is not None and inferred != requested:
            errors.print(
                f"[yellow]note:[/yellow] writing {requested} audio to a {escape(output.suffix)} file",
                soft_wrap=True,
                highlight=False,
            )
        return requested
    if inferred is None:
        if output.suffix:
            errors.print(
                f"[yellow]note:[/yellow] {escape(output.suffix)} is not an audio extension openfish knows; "
                f"asking for {FALLBACK_FORMAT} (use --format to choose)",
                soft_wrap=True,
                highlight=False,
            )
        return FALLBACK_FORMAT
    return inferred


def check_target(output: Path) -> None:
    """Fail before spending credits when the output cannot be written where it was asked for."""
    if output.is_dir():
        fail(f"{escape(str(output))} is a directory")
    parent = output.parent
    if not parent.is_dir():
        fail(f"the directory {escape(str(parent))} does not exist")
    if not os.access(parent, os.W_OK):
        fail(f"the directory {escape(str(parent))} is not writable")


def describe_error(response: httpx.Response) -> str:
    """The server's error envelope (``{"code", "message", "requestId"}``) as one escaped line."""
    request_id = response.headers.get("X-Request-Id")
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        code = payload.get("code")
        request_id = payload.get("requestId") or request_id
        line = escape(str(payload["message"]))
        if code:
            line += f" ({escape(str(code))}, HTTP {response.status_code})"
        else:
            line += f" (HTTP {response.status_code})"
    else:
        snippet = response.text.strip()[:200]
        line = f"the server answered HTTP {response.status_code}" + (
            f": {escape(snippet)}" if snippet else ""
        )
    if request_id:
        line += f"\n  requestId: {escape(str(request_id))}"
    return line


def temp_path(output: Path) -> Path:
    """A hidden, unique name in the output's own directory, so the final rename stays atomic."""
    return output.with_name(f".{output.name}.{secrets.token_hex(4)}.part")


def _stream_to(response: httpx.Response, sink: BinaryIO, progress: Progress) -> int:
    """Copy the response body into ``sink`` as it arrives, advancing a progress bar; return its size."""
    task = progress.add_task("receiving audio", total=None)
    received = 0
    for chunk in response.iter_bytes():
        sink.write(chunk)
        received += len(chunk)
        progress.update(task, completed=received)
    return received


def _progress() -> Progress:
    """Bytes received, rate and elapsed time, on standard error."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        FileSizeColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def tts(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", dir_okay=False, help="Where to write the audio.", show_default=False),
    ],
    token: Annotated[
        str,
        typer.Option(envvar="OPENFISH_TOKEN", help="API token (ofk_tok_...).", show_default=False),
    ],
    text: Annotated[
        str | None,
        typer.Argument(help="What to say; '-' reads it from standard input.", show_default=False),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", exists=True, dir_okay=False, help="Read the text from this UTF-8 file."),
    ] = None,
    voice: Annotated[str | None, typer.Option("--voice", help="A voice id (see /voices).")] = None,
    audio_format: Annotated[
        AudioFormat | None,
        typer.Option("--format", help="Audio format (default: from the output's extension, else mp3)."),
    ] = None,
    speed: Annotated[float | None, typer.Option(help="Speaking rate, 0.5 to 2.0.")] = None,
    volume: Annotated[float | None, typer.Option(help="Gain in dB, -20 to 20.")] = None,
    version: Annotated[str | None, typer.Option(help="Model version, e.g. v1, s1, v3-turbo.")] = None,
    emotion: Annotated[str | None, typer.Option(help="happy, sad, angry, calm, ... or auto.")] = None,
    language: Annotated[
        str | None, typer.Option(help="A language code such as en or en-US, or auto.")
    ] = None,
    server: Annotated[
        str, typer.Option(envvar="OPENFISH_SERVER", help="Base URL of the openfish server.")
    ] = DEFAULT_SERVER,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait to connect and between pieces of audio.")
    ] = 120.0,
) -> None:
    """Synthesize speech on a running openfish server and write the audio to a file as it streams."""
    spoken = _read_text(text, file)
    if not spoken:
        fail("the text is empty")
    chosen = choose_format(output, audio_format)
    check_target(output)
    body: dict[str, object] = {"text": spoken, "format": chosen}
    optional: dict[str, object | None] = {
        "voiceId": voice,
        "speed": speed,
        "volume": volume,
        "version": version,
        "emotion": emotion,
        "language": language,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    url = server.rstrip("/") + TTS_PATH
    headers = {"Authorization": f"Bearer {token}", "Accept": "audio/*, application/json"}
    started = time.monotonic()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout)) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            if response.status_code != 200:
                response.read()
                fail(describe_error(response))
            usage = Usage.from_headers(response.headers)
            request_id = response.headers.get("X-Request-Id")
            size = _receive(response, output, request_id)
    except httpx.TimeoutException as exc:
        fail(f"timed out talking to {escape(server)} ({type(exc).__name__}); try a larger --timeout")
    except httpx.TransportError as exc:
        fail(f"cannot reach the server at {escape(server)}: {escape(str(exc) or type(exc).__name__)}")
    except httpx.InvalidURL as exc:
        fail(f"invalid --server {escape(server)}: {escape(str(exc))}")
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]; no output file was written.")
        raise typer.Exit(130) from None
    elapsed = time.monotonic() - started
    console.print(
        f"Wrote {escape(str(output))}: {size:,} bytes of {chosen} in {elapsed:.1f}s; "
        f"{usage.characters} characters, {usage.credits} credits used, "
        f"{usage.quota_remaining} quota remaining.",
        soft_wrap=True,
        highlight=False,
    )


def _receive(response: httpx.Response, output: Path, request_id: str | None) -> int:
    """Stream ``response`` into a temporary file and rename it to ``output`` once complete."""
    temp = temp_path(output)
    done = False
    try:
        try:
            sink = temp.open("xb")
        except OSError as exc:
            fail(f"cannot create {escape(str(temp))}: {escape(str(exc))}")
        with sink, _progress() as progress:
            try:
                size = _stream_to(response, sink, progress)
            except httpx.HTTPError as exc:  # e.g. RemoteProtocolError: the chunked body ended early
                where = f" (requestId {escape(request_id)})" if request_id else ""
                fail(
                    f"the audio stream broke off after {sink.tell():,} bytes{where}: "
                    f"{escape(str(exc) or type(exc).__name__)}\n"
                    f"  The audio is incomplete; nothing was written to {escape(str(output))}."
                )
            except OSError as exc:
                fail(f"cannot write {escape(str(temp))}: {escape(str(exc))}")
        if size == 0:
            fail("the server sent no audio; nothing was written")
        try:
            os.replace(temp, output)
        except OSError as exc:
            fail(f"cannot write {escape(str(output))}: {escape(str(exc))}")
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                temp.unlink()
    return size

"""``openfish transcribe FILE``: speech to text through a running server, with upload progress."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

console = Console()
errors = Console(stderr=True)
CHUNK = 256 * 1024


def _multipart(path: Path, fields: dict[str, str], progress: Progress) -> tuple[Iterator[bytes], str]:
    """A streamed multipart body (the file is never read whole), and its content type."""
    boundary = "openfish-" + path.stat().st_mtime_ns.to_bytes(8, "big").hex()
    task = progress.add_task("uploading", total=path.stat().st_size)

    def body() -> Iterator[bytes]:
        for name, value in fields.items():
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                progress.advance(task, len(chunk))
                yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), f"multipart/form-data; boundary={boundary}"


def transcribe(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Audio or video file to transcribe.")
    ],
    token: Annotated[str, typer.Option(envvar="OPENFISH_TOKEN", help="API token.", show_default=False)],
    server: Annotated[
        str, typer.Option(envvar="OPENFISH_SERVER", help="Server URL.")
    ] = "http://127.0.0.1:8000",
    language: Annotated[str, typer.Option(help="Language code, or auto.")] = "auto",
    words: Annotated[bool, typer.Option("--words/--no-words", help="Word timestamps.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole JSON answer.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 3600.0,
) -> None:
    """Transcribe FILE; prints the text (or the JSON answer with --json)."""
    fields = {"language": language, "words": "true" if words else "false"}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        body, content_type = _multipart(file, fields, progress)
        try:
            response = httpx.post(
                f"{server.rstrip('/')}/api/open/v1/speech/transcriptions",
                headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
                content=body,
                timeout=httpx.Timeout(timeout, connect=10.0),
            )
        except httpx.HTTPError as exc:
            errors.print(f"[red]error:[/red] could not reach {server}: {type(exc).__name__}", markup=True)
            raise typer.Exit(1) from exc
    if response.status_code != 200:
        try:
            problem = response.json()
            message = (
                f"{problem.get('message')} ({problem.get('code')}, requestId {problem.get('requestId')})"
            )
        except ValueError:
            message = response.text[:200]
        errors.print(f"error: HTTP {response.status_code}: {message}", markup=False, highlight=False)
        raise typer.Exit(1)
    answer = response.json()
    if as_json:
        console.print_json(json.dumps(answer))
    else:
        console.print(answer["text"], markup=False, highlight=False, soft_wrap=True)
        errors.print(
            f"{answer['duration']:.1f} s of {answer['language']} audio; "
            f"{answer['credits_used']} credits used, {answer['quota_remaining']} quota remaining."
        )

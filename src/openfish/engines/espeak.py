"""espeak-ng (the Debian package's command-line program): many languages, formant synthesis."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator

import numpy as np

from openfish.engines.base import Audio, EngineError, SynthesisOptions, VoiceInfo

TIMEOUT_SECONDS = 60
_WAV_HEADER_BYTES = 44


class EspeakEngine:
    """Runs ``espeak-ng`` once per text piece; its voices are named ``espeak-<language>``."""

    name = "espeak"
    sample_rate = 22050

    def __init__(self, executable: str = "espeak-ng") -> None:
        self._executable = executable
        self._voices: dict[str, VoiceInfo] | None = None

    @staticmethod
    def available(executable: str = "espeak-ng") -> bool:
        """Whether the program is installed."""
        return shutil.which(executable) is not None

    @property
    def loaded(self) -> bool:
        return self._voices is not None

    def load(self) -> None:
        if self._voices is not None:
            return
        listing = self._run(["--voices"], b"").decode("utf-8", "replace")
        voices: dict[str, VoiceInfo] = {}
        for line in listing.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4:
                continue
            language, name = fields[1], fields[3]
            voice_id = f"espeak-{language}"
            voices.setdefault(
                voice_id,
                VoiceInfo(id=voice_id, name=f"{name} (espeak-ng)", language=language, engine=self.name),
            )
        self._voices = voices

    def voices(self) -> list[VoiceInfo]:
        self.load()
        assert self._voices is not None
        return list(self._voices.values())

    def synthesize(self, text: str, options: SynthesisOptions) -> Iterator[Audio]:
        language = options.voice.removeprefix("espeak-")
        arguments = ["-v", language, "--stdin", "--stdout"]
        wav = self._run(arguments, text.encode("utf-8"))
        if len(wav) < _WAV_HEADER_BYTES or wav[:4] != b"RIFF":
            raise EngineError("espeak-ng produced no audio")
        (rate_in_header,) = struct.unpack("<I", wav[24:28])
        if rate_in_header != self.sample_rate:
            raise EngineError(f"espeak-ng produced {rate_in_header} Hz, expected {self.sample_rate}")
        samples = np.frombuffer(wav[_WAV_HEADER_BYTES:], dtype="<i2").astype(np.float32) / 32768.0
        yield samples

    def _run(self, arguments: list[str], stdin: bytes) -> bytes:
        try:
            completed = subprocess.run(  # noqa: S603 (fixed program; text goes through stdin)
                [self._executable, *arguments],
                input=stdin,
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise EngineError(f"espeak-ng failed: {type(exc).__name__}") from exc
        return completed.stdout

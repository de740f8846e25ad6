"""Reference speech for voice tests, made on the spot: espeak-ng voices unlike the Piper base."""

from __future__ import annotations

import io
import subprocess
from functools import cache

import av
import numpy as np

from openfish.audio.decode import decode_audio
from openfish.audio.encode import encode_complete

SENTENCES = (
    "The museum opens at nine and closes late on Fridays.",
    "Our neighbours planted tomatoes, beans and sunflowers this spring.",
    "Could you read the last paragraph once more, slowly please?",
    "A gentle wind carried the smell of rain across the fields.",
)


@cache
def espeak_wav(text: str, voice: str = "en-us+f3", pitch: int = 70) -> bytes:
    """``text`` spoken by an espeak-ng voice (female variant, raised pitch by default), as WAV."""
    return subprocess.run(  # noqa: S603 (fixed program from PATH, text on stdin)
        ["espeak-ng", "-v", voice, "-p", str(pitch), "--stdin", "--stdout"],  # noqa: S607
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


def reencode(wav: bytes, fmt: str) -> tuple[str, bytes]:
    """The clip in another container: ``mp3``, ``ogg`` (Opus), ``m4a`` (AAC) or ``webm`` (Opus)."""
    decoded = decode_audio(wav)
    if fmt == "mp3":
        return "clip.mp3", encode_complete(decoded.samples, "mp3", decoded.sample_rate)
    if fmt == "ogg":
        return "clip.ogg", encode_complete(decoded.samples, "opus", decoded.sample_rate)
    codec, container, rate = {"m4a": ("aac", "mp4", 44100), "webm": ("libopus", "webm", 48000)}[fmt]
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as target:
        stream = target.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(decoded.samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = decoded.sample_rate
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return f"clip.{fmt}", out.getvalue()


def silence_wav(seconds: float = 3.0) -> bytes:
    """A WAV of digital silence."""
    return encode_complete(np.zeros(int(22050 * seconds), dtype=np.float32), "wav", 22050)

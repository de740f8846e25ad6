"""Checking reference audio uploads: every file decodes, carries speech, and the total is in range."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openfish.audio.decode import UndecodableAudio, decode_audio
from openfish.audio.encode import encode_complete
from openfish.audio.resample import resample, speech_seconds
from openfish.config import VoiceSettings
from openfish.engines.base import Audio
from openfish.errors import InvalidRequest, PayloadTooLarge, Unprocessable

#: Reference audio is kept and analysed at the base voices' rate.
ANALYSIS_RATE = 22050


@dataclass(frozen=True)
class Upload:
    """One uploaded file as received."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Reference:
    """One checked reference clip, resampled for analysis, with its speech duration."""

    filename: str
    samples: Audio
    speech_seconds: float

    def wav(self) -> bytes:
        """The clip as 16-bit WAV, the form it is stored in."""
        return encode_complete(self.samples, "wav", ANALYSIS_RATE)


def check_uploads(uploads: list[Upload], rules: VoiceSettings, field: str = "audioFiles") -> list[Reference]:
    """Decode and check every upload (blocking: run in the worker pool); errors name the form
    ``field`` and the file."""
    if not uploads:
        raise InvalidRequest(f"{field}: at least one reference audio file is required")
    if len(uploads) > rules.max_files:
        raise InvalidRequest(f"{field}: at most {rules.max_files} files")
    references = [_check_one(f"{field}[{i}]", upload, rules) for i, upload in enumerate(uploads)]
    total = sum(reference.speech_seconds for reference in references)
    if total < rules.min_speech_seconds:
        raise Unprocessable(
            f"{field}: {total:.1f} s of speech in all; at least {rules.min_speech_seconds:g} s is needed"
        )
    if total > rules.max_speech_seconds:
        raise Unprocessable(
            f"{field}: {total:.1f} s of speech in all; at most {rules.max_speech_seconds:g} s is allowed"
        )
    return references


def _check_one(item: str, upload: Upload, rules: VoiceSettings) -> Reference:
    label = f"{item} ({upload.filename or 'unnamed'})"
    if len(upload.data) > rules.max_file_bytes:
        raise PayloadTooLarge(f"{label}: larger than {rules.max_file_bytes} bytes")
    if not upload.data:
        raise InvalidRequest(f"{label}: the file is empty")
    try:
        # A file longer than the whole allowance cannot be part of a valid voice: stop decoding there.
        decoded = decode_audio(upload.data, max_seconds=rules.max_speech_seconds * 2)
    except UndecodableAudio as exc:
        raise InvalidRequest(f"{label}: not audio that can be decoded ({exc})") from exc
    samples = resample(decoded.samples, decoded.sample_rate, ANALYSIS_RATE)
    if not np.all(np.isfinite(samples)):
        raise InvalidRequest(f"{label}: the audio contains invalid samples")
    speech = speech_seconds(samples, ANALYSIS_RATE)
    if speech < 0.3:
        raise Unprocessable(f"{label}: contains no speech (silence or near-silence)")
    return Reference(filename=upload.filename, samples=samples, speech_seconds=speech)

"""Decoding uploads: any audio PyAV reads becomes float32 mono at its own rate; anything else is refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf  # type: ignore[import-untyped]
from av.audio.stream import AudioStream
from av.container import InputContainer

from openfish.audio import decode
from openfish.audio.decode import DecodedAudio, UndecodableAudio, decode_audio
from openfish.audio.encode import encode_complete

RATE = 22050


def sine(
    seconds: float = 1.0, rate: int = RATE, hz: float = 220.0, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def soundfile_bytes(
    data: npt.NDArray[np.float32], rate: int, fmt: str = "WAV", subtype: str = "PCM_16"
) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def dominant_hz(samples: npt.NDArray[np.float32], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_wav_decodes_to_float32_mono_at_its_rate() -> None:
    signal = sine()

    audio = decode_audio(soundfile_bytes(signal, RATE))

    assert audio.sample_rate == RATE
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.duration_seconds == 1.0
    np.testing.assert_allclose(audio.samples, signal, atol=1.5 / 32767)


@pytest.mark.parametrize(("fmt", "subtype", "rate"), [("FLAC", "PCM_16", 44100), ("WAV", "PCM_24", 16000)])
def test_native_rate_is_kept(fmt: str, subtype: str, rate: int) -> None:
    audio = decode_audio(soundfile_bytes(sine(rate=rate), rate, fmt, subtype))

    assert audio.sample_rate == rate
    assert len(audio.samples) == rate
    assert dominant_hz(audio.samples, rate) == pytest.approx(220.0, abs=2.0)


# Duration bounds as in test_encode: MP3 keeps LAME's delay and frame padding, Ogg Opus is trimmed.
@pytest.mark.parametrize(
    ("fmt", "rate", "low", "high"), [("mp3", RATE, 0.0, 0.1), ("opus", 48000, -0.002, 0.002)]
)
def test_compressed_formats_decode(fmt: str, rate: int, low: float, high: float) -> None:
    audio = decode_audio(encode_complete(sine(), fmt, RATE))

    assert audio.sample_rate == rate
    assert low <= audio.duration_seconds - 1.0 <= high
    assert dominant_hz(audio.samples, rate) == pytest.approx(220.0, abs=2.0)


def test_stereo_is_averaged_without_changing_level() -> None:
    left = sine(amplitude=0.5)
    stereo = np.stack([left, left], axis=1)
    opposite = np.stack([left, -left], axis=1)

    same = decode_audio(soundfile_bytes(stereo, RATE))
    cancelled = decode_audio(soundfile_bytes(opposite, RATE))

    np.testing.assert_allclose(same.samples, left, atol=1.5 / 32767)
    assert np.abs(cancelled.samples).max() < 1e-4


def test_many_channels_are_averaged() -> None:
    left = sine(amplitude=0.8)
    surround = np.stack([left] * 6, axis=1)

    audio = decode_audio(soundfile_bytes(surround, RATE))

    assert np.abs(audio.samples).max() == pytest.approx(0.8, abs=1e-3)


def test_result_is_frozen() -> None:
    audio = decode_audio(soundfile_bytes(sine(0.1), RATE))

    with pytest.raises(FrozenInstanceError):
        audio.sample_rate = 8000  # type: ignore[misc]
    assert DecodedAudio(samples=np.zeros(8000, dtype=np.float32), sample_rate=16000).duration_seconds == 0.5


def png_bytes() -> bytes:
    """A one-frame PNG: a real media file PyAV opens, with a video stream and no audio."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="image2pipe") as container:
        stream = container.add_stream("png", rate=1)
        stream.width = stream.height = 8
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), dtype=np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


WAV = soundfile_bytes(sine(), RATE)
CORRUPT = {
    "empty": b"",
    "random": np.random.default_rng(1234).bytes(8192),
    "truncated header": WAV[:20],
    "header without samples": WAV[:44],
    "text": b"Hello, this is a plain text file.\nIt has several lines.\n" * 40,
    "json": b'{"text": "hello", "format": "wav"}',
    "image": png_bytes(),
}


@pytest.mark.parametrize("name", CORRUPT)
def test_undecodable_input_is_refused(name: str) -> None:
    with pytest.raises(UndecodableAudio) as caught:
        decode_audio(CORRUPT[name])

    assert isinstance(caught.value, ValueError)
    assert str(caught.value)


def test_files_named_inside_the_input_are_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FFmpeg's concat demuxer would otherwise read a local file the upload names."""
    (tmp_path / "secret.wav").write_bytes(WAV)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(UndecodableAudio):
        decode_audio(b"ffconcat version 1.0\nfile 'secret.wav'\n")


def test_max_seconds_is_enforced() -> None:
    two_seconds = soundfile_bytes(sine(2.0), RATE)

    with pytest.raises(UndecodableAudio, match="longer than"):
        decode_audio(two_seconds, max_seconds=1.5)
    assert decode_audio(two_seconds, max_seconds=2.0).duration_seconds == 2.0
    assert decode_audio(two_seconds, max_seconds=30).duration_seconds == 2.0


def test_max_seconds_stops_decoding_early(monkeypatch: pytest.MonkeyPatch) -> None:
    counted = 0
    real = decode._float_frames

    def counting(container: InputContainer, stream: AudioStream) -> Iterator[av.AudioFrame]:
        nonlocal counted
        for frame in real(container, stream):
            counted += frame.samples
            yield frame

    monkeypatch.setattr(decode, "_float_frames", counting)
    ten_seconds = soundfile_bytes(sine(10.0), RATE)

    with pytest.raises(UndecodableAudio):
        decode_audio(ten_seconds, max_seconds=1.0)

    assert counted < 2 * RATE


@pytest.mark.parametrize("limit", [0.0, -1.0])
def test_non_positive_limit_is_a_caller_error(limit: float) -> None:
    with pytest.raises(ValueError, match="max_seconds") as caught:
        decode_audio(WAV, max_seconds=limit)

    assert not isinstance(caught.value, UndecodableAudio)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "flac"])
def test_probe_reads_the_length_from_the_headers(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"clip.{fmt}"
    if fmt == "flac":  # as a FLAC tool writes it (openfish's streaming encoder leaves the length out)
        path.write_bytes(soundfile_bytes(sine(seconds=75.0), RATE, "FLAC"))
    else:
        path.write_bytes(encode_complete(sine(seconds=75.0), fmt, RATE))
    length = decode.probe_duration(path)
    assert length is not None
    assert length == pytest.approx(75.0, abs=0.2)


def test_probe_says_nothing_of_what_is_not_audio(tmp_path: Path) -> None:
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(np.random.default_rng(5).bytes(4096))
    assert decode.probe_duration(noise) is None
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    assert decode.probe_duration(text) is None

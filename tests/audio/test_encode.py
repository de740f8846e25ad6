"""Streaming encoders: every format's output decodes back to the signal that went in."""

from __future__ import annotations

import io
import itertools
import struct
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf  # type: ignore[import-untyped]

from openfish.audio.encode import (
    AUDIO_FORMATS,
    apply_gain_db,
    encode_complete,
    make_encoder,
    to_int16,
)

RATE = 22050
TONE_HZ = 220.0
# Uneven chunk sizes (one empty) summing to exactly 1.0 s at RATE, as a synthesis engine might yield.
CHUNKS = (1000, 0, 3000, 7000, 5000, 6050)

# Expected decoded sample rate per format: Opus is always encoded at 48 kHz.
DECODED_RATE = {"mp3": RATE, "wav": RATE, "pcm": RATE, "opus": 48000, "aac": RATE, "flac": RATE}
# Allowed (min, max) of decoded duration minus the 1.0 s that went in, in seconds. WAV and PCM are
# sample-exact. Ogg Opus carries pre-skip and an end granule, so decoders trim to the exact length
# (2 ms allows for resampler rounding). lameenc writes no LAME/Xing gapless tag, so MP3 decoders
# keep LAME's encoder delay and the padding to a whole frame: up to ~0.08 s at 22.05 kHz. ADTS
# carries no priming either: AAC decoders keep its 1024 samples and the last frame's padding. FLAC
# is lossless and sample-exact.
DURATION_TOLERANCE = {
    "wav": (0.0, 0.0),
    "pcm": (0.0, 0.0),
    "opus": (-0.002, 0.002),
    "mp3": (0.0, 0.1),
    "aac": (0.0, 0.1),
    "flac": (0.0, 0.0),
}


def sine(
    seconds: float = 1.0, rate: int = RATE, hz: float = TONE_HZ, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def stream_encode(fmt: str, signal: npt.NDArray[np.float32], rate: int = RATE) -> tuple[bytes, bytes]:
    """Feed ``signal`` through a stream encoder in CHUNKS-shaped pieces; (bytes before finish, all)."""
    encoder = make_encoder(fmt, rate)
    parts = [encoder.header()]
    # CHUNKS are scaled to the signal's length, so longer signals keep the same uneven pattern.
    bounds = np.cumsum((0, *CHUNKS)) * len(signal) // RATE
    for start, end in itertools.pairwise(bounds):
        parts.append(encoder.encode(signal[start:end]))
    before_finish = b"".join(parts)
    return before_finish, before_finish + encoder.finish()


@dataclass
class Decoded:
    samples: npt.NDArray[np.float32]
    rate: int
    channels: int
    codec: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def pyav_decode(data: bytes, fmt: str, rate: int = RATE) -> Decoded:
    """Decode independently of openfish.audio.decode, straight through PyAV."""
    if fmt == "pcm":
        container = av.open(
            io.BytesIO(data),
            mode="r",
            format="s16le",
            options={"sample_rate": str(rate), "ch_layout": "mono"},
        )
    else:
        container = av.open(io.BytesIO(data), mode="r")
    with container:
        stream = container.streams.audio[0]
        planes = [_as_float(frame) for frame in container.decode(stream)]
        context = stream.codec_context
        codec, channels, rate_out = context.name, context.channels, context.sample_rate
    return Decoded(
        samples=np.concatenate(planes, axis=-1).reshape(-1), rate=rate_out, channels=channels, codec=codec
    )


def _as_float(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    """Frame samples as float32: PCM decodes to s16, the lossy codecs to float."""
    array = frame.to_ndarray()
    if frame.format.name.startswith("s16"):
        return (array / 32768.0).astype(np.float32)
    assert frame.format.name.startswith("flt"), frame.format.name
    return array.astype(np.float32)


def dominant_hz(samples: npt.NDArray[np.float32], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def rms_db(samples: npt.NDArray[np.float32]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples.astype(np.float64))))))


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_streamed_output_decodes_to_the_same_tone(fmt: str) -> None:
    _, data = stream_encode(fmt, sine())

    decoded = pyav_decode(data, fmt)

    assert decoded.channels == 1
    assert decoded.rate == DECODED_RATE[fmt]
    low, high = DURATION_TOLERANCE[fmt]
    assert low <= decoded.seconds - 1.0 <= high, decoded.seconds
    assert dominant_hz(decoded.samples, decoded.rate) == pytest.approx(TONE_HZ, abs=2.0)
    # Lossy codecs keep the level too (within 1 dB of the 0.5-amplitude sine's -9.03 dBFS RMS).
    assert rms_db(decoded.samples) == pytest.approx(rms_db(sine()), abs=1.0)


@pytest.mark.parametrize("fmt", ["wav", "pcm"])
def test_lossless_formats_round_trip_sample_exactly(fmt: str) -> None:
    signal = sine()
    _, data = stream_encode(fmt, signal)

    decoded = pyav_decode(data, fmt)

    assert len(decoded.samples) == len(signal)
    np.testing.assert_allclose(decoded.samples, signal, atol=1.5 / 32767)


def test_streamed_wav_reads_with_soundfile_despite_unknown_length() -> None:
    signal = sine()
    _, data = stream_encode("wav", signal)

    samples, rate = sf.read(io.BytesIO(data), dtype="float32")

    assert rate == RATE
    assert samples.ndim == 1
    assert len(samples) == len(signal)
    assert dominant_hz(samples, rate) == pytest.approx(TONE_HZ, abs=2.0)


def test_streaming_wav_header_declares_unknown_sizes() -> None:
    header = make_encoder("wav", RATE).header()

    assert len(header) == 44
    riff, riff_size, wave = struct.unpack_from("<4sI4s", header, 0)
    fmt_id, fmt_size, tag, channels, rate, byte_rate, align, bits = struct.unpack_from(
        "<4sIHHIIHH", header, 12
    )
    data_id, data_size = struct.unpack_from("<4sI", header, 36)
    assert (riff, wave, fmt_id, data_id) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert riff_size == data_size == 0xFFFFFFFF
    assert (fmt_size, tag, channels, rate, byte_rate, align, bits) == (16, 1, 1, RATE, RATE * 2, 2, 16)


def test_complete_wav_has_exact_sizes() -> None:
    signal = sine(0.5)

    data = encode_complete(signal, "wav", RATE)

    assert len(data) == 44 + 2 * len(signal)
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert struct.unpack_from("<I", data, 40)[0] == 2 * len(signal)
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (RATE, 1, len(signal), "PCM_16")


@pytest.mark.parametrize("fmt", ["mp3", "pcm", "opus", "aac", "flac"])
def test_complete_encoding_of_other_formats_decodes(fmt: str) -> None:
    decoded = pyav_decode(encode_complete(sine(), fmt, RATE), fmt)

    assert dominant_hz(decoded.samples, decoded.rate) == pytest.approx(TONE_HZ, abs=2.0)


def test_pcm_is_two_bytes_per_sample_little_endian() -> None:
    encoder = make_encoder("pcm", RATE)

    data = encoder.encode(np.array([0.5, -0.25, 1.0, -1.0, 0.0], dtype=np.float32)) + encoder.finish()

    assert data == struct.pack("<5h", 16384, -8192, 32767, -32767, 0)
    assert len(make_encoder("pcm", RATE).encode(sine())) == 2 * RATE


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_compressed_formats_emit_audio_before_finish(fmt: str) -> None:
    """A streaming encoder must not hold the whole stream until the end."""
    before_finish, everything = stream_encode(fmt, sine(2.0))

    assert len(before_finish) > 0.7 * len(everything)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100, 48000])
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac"])
def test_compressed_formats_accept_common_engine_rates(fmt: str, rate: int) -> None:
    data = encode_complete(sine(rate=rate), fmt, rate)

    decoded = pyav_decode(data, fmt, rate)

    assert decoded.rate == (48000 if fmt == "opus" else rate)
    assert dominant_hz(decoded.samples, decoded.rate) == pytest.approx(TONE_HZ, abs=2.0)


def test_content_types() -> None:
    assert make_encoder("mp3", RATE).content_type == "audio/mpeg"
    assert make_encoder("wav", RATE).content_type == "audio/wav"
    assert make_encoder("opus", RATE).content_type == "audio/ogg; codecs=opus"
    assert make_encoder("aac", RATE).content_type == "audio/aac"
    assert make_encoder("flac", RATE).content_type == "audio/flac"
    assert make_encoder("pcm", 16000).content_type == "audio/pcm;rate=16000;encoding=s16le;channels=1"
    for fmt in AUDIO_FORMATS:
        encoder = make_encoder(fmt, RATE)
        assert (encoder.format, encoder.sample_rate) == (fmt, RATE)


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_an_empty_stream_finishes_cleanly(fmt: str) -> None:
    encoder = make_encoder(fmt, RATE)

    assert isinstance(
        encoder.header() + encoder.encode(np.zeros(0, dtype=np.float32)) + encoder.finish(), bytes
    )


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_misuse_is_refused(fmt: str) -> None:
    encoder = make_encoder(fmt, RATE)
    with pytest.raises(ValueError, match="1-D"):
        encoder.encode(np.zeros((2, 100), dtype=np.float32))
    encoder.encode(sine(0.1))
    encoder.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        encoder.encode(sine(0.1))
    with pytest.raises(RuntimeError, match="twice"):
        encoder.finish()


def test_float64_input_is_accepted() -> None:
    encoder = make_encoder("pcm", RATE)

    assert encoder.encode(np.array([0.5, -0.5], dtype=np.float64)) == struct.pack("<2h", 16384, -16384)


@pytest.mark.parametrize("fmt", ["aiff", "", "MP3", "ogg"])
def test_unknown_format_is_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        make_encoder(fmt, RATE)
    with pytest.raises(ValueError, match="unknown audio format"):
        encode_complete(sine(), fmt, RATE)


@pytest.mark.parametrize("rate", [0, -22050])
def test_non_positive_rate_is_refused(rate: int) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        make_encoder("pcm", rate)
    with pytest.raises(ValueError, match="sample rate"):
        encode_complete(sine(), "wav", rate)


@pytest.mark.parametrize("db", [6.0, -6.0, 3.5, -20.0])
def test_gain_changes_rms_by_that_many_db(db: float) -> None:
    quiet = sine(amplitude=0.25)

    louder = apply_gain_db(quiet, db)

    assert louder.dtype == np.float32
    assert rms_db(louder) - rms_db(quiet) == pytest.approx(db, abs=0.2)


def test_gain_clips_to_full_scale() -> None:
    loud = apply_gain_db(sine(amplitude=0.9), 20.0)

    assert loud.dtype == np.float32
    assert loud.max() == 1.0
    assert loud.min() == -1.0
    assert np.array_equal(
        apply_gain_db(np.array([1.5, -3.0, 0.25]), 0.0), np.array([1.0, -1.0, 0.25], np.float32)
    )


def test_to_int16_clips_scales_and_sanitises() -> None:
    values = np.array([2.0, -2.0, 1.0, -1.0, 0.0, 0.5, np.nan, np.inf, -np.inf], dtype=np.float32)

    result = to_int16(values)

    assert result.dtype == np.int16
    assert result.tolist() == [32767, -32767, 32767, -32767, 0, 16384, 0, 32767, -32767]


def test_flac_round_trips_sample_exactly() -> None:
    signal = sine()
    _, data = stream_encode("flac", signal)

    decoded = pyav_decode(data, "flac")

    assert decoded.codec == "flac"
    assert np.array_equal(np.rint(decoded.samples * 32768), to_int16(signal).astype(np.float32))

"""WORLD voice conversion on real speech: Piper's voice toward an espeak-ng female voice and toward a
pitch- and formant-shifted Piper voice, judged by pitch and by the d-vector speaker embedder."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
import pytest

from openfish.audio.resample import resample_exact
from openfish.engines.base import Audio, SynthesisOptions, VoiceConverter
from openfish.engines.espeak import EspeakEngine
from openfish.engines.piper import PiperEngine
from openfish.engines.speaker import SpeakerEmbedder
from openfish.engines.world import PROFILE_KIND, WorldConverter, decode_profile, encode_profile
from tests.audio_checks import mean_f0, rms_db

RATE = 22050
BASE_SENTENCES = [
    "Good morning, and welcome to the show.",
    "Every system needs a careful design before anyone writes the code.",
    "Turn left at the second light and the station is on your right.",
]
ANALYSIS = [
    "Yesterday afternoon we walked along the river and watched the boats go by.",
    "Please remember to bring your notebook, a pencil, and something warm to wear.",
]
HELD_OUT = [
    "The library closes early on Sundays, so plan your visit carefully.",
    "She said the weather would clear up by the evening, but it kept raining.",
]
TO_CONVERT = [
    "A journey of a thousand miles begins with a single step.",
    "The museum will open a new exhibition about ancient maps next month.",
]
#: The shifted speaker's pitch and formants are Piper's times this (its clips play 1.2x faster).
SHIFT = 1.2
#: Measured: base vs espeak-ng f3 0.15, converted 0.71; base vs the shifted voice 0.34, converted 0.84.
#: Demand well under half of either gain.
MARGIN = 0.2

pytestmark = pytest.mark.skipif(not EspeakEngine.available(), reason="espeak-ng is not installed")


@dataclass
class Speaker:
    analysis: list[Audio]
    held_out: list[Audio]


@dataclass
class Material:
    converter: WorldConverter
    embedder: SpeakerEmbedder
    base_profile: bytes
    to_convert: list[Audio]
    female: Speaker
    shifted: Speaker


@pytest.fixture(scope="module")
def material() -> Material:
    piper = PiperEngine.bundled()
    espeak = EspeakEngine()
    options = SynthesisOptions(voice="en_US-joe-medium")

    def joe(text: str) -> Audio:
        return np.concatenate(list(piper.synthesize(text, options)))

    def female(text: str) -> Audio:
        return np.concatenate(list(espeak.synthesize(text, SynthesisOptions(voice="espeak-en-us+f3"))))

    def shifted(text: str) -> Audio:
        return resample_exact(joe(text), RATE, round(RATE / SHIFT))

    converter = WorldConverter()
    return Material(
        converter=converter,
        embedder=SpeakerEmbedder(),
        base_profile=converter.analyse([joe(text) for text in BASE_SENTENCES], RATE),
        to_convert=[joe(text) for text in TO_CONVERT],
        female=Speaker([female(t) for t in ANALYSIS], [female(t) for t in HELD_OUT]),
        shifted=Speaker([shifted(t) for t in ANALYSIS], [shifted(t) for t in HELD_OUT]),
    )


def similarity(embedder: SpeakerEmbedder, clips: list[Audio], speaker: Speaker) -> float:
    """Mean cosine similarity of each clip to the centroid of the speaker's held-out clips."""
    centroid = np.mean([embedder.embed(clip, RATE) for clip in speaker.held_out], axis=0)
    return float(np.mean([embedder.similarity(embedder.embed(clip, RATE), centroid) for clip in clips]))


def test_the_converter_meets_the_protocol() -> None:
    converter = WorldConverter()
    assert isinstance(converter, VoiceConverter)
    assert converter.name == "world"


def test_a_profile_round_trips_and_is_small(material: Material) -> None:
    data = material.converter.analyse(material.female.analysis, RATE)
    profile = decode_profile(data)
    assert 5.0 < profile.log_f0_mean < 6.0  # e^5 = 148 Hz, e^6 = 403 Hz: a female voice
    again = decode_profile(encode_profile(profile))
    assert again.log_f0_mean == profile.log_f0_mean
    np.testing.assert_allclose(again.envelope, profile.envelope)
    np.testing.assert_allclose(again.pool, profile.pool)
    assert len(data) < 300_000


def _archive(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_garbage_and_foreign_profiles_are_rejected(material: Material) -> None:
    good = material.base_profile
    fields = dict(np.load(io.BytesIO(good), allow_pickle=False))
    bad = [
        b"",
        b"not a profile",
        good[: len(good) // 2],
        _archive(**{**fields, "kind": np.array("something-else")}),
        _archive(**{**fields, "version": np.array(99)}),
        _archive(**{**fields, "envelope": fields["envelope"][:10]}),
        _archive(**{**fields, "f0": np.array([np.nan, 0.1])}),
        _archive(**{key: value for key, value in fields.items() if key != "pool"}),
        _archive(**{**fields, "pool": np.array([{"x": 1}], dtype=object)}),  # needs pickle to load
    ]
    for data in bad:
        with pytest.raises(ValueError, match="profile"):
            decode_profile(data)
        with pytest.raises(ValueError, match="profile"):
            material.converter.convert(material.to_convert[0], RATE, good, data)
    assert decode_profile(good).envelope.size == 513
    assert str(fields["kind"]) == PROFILE_KIND


def test_silence_cannot_be_profiled() -> None:
    with pytest.raises(ValueError, match="voiced speech"):
        WorldConverter().analyse([np.zeros(RATE * 2, dtype=np.float32)], RATE)


def test_conversion_keeps_length_and_level_and_moves_the_pitch(material: Material) -> None:
    converter, base = material.converter, material.base_profile
    target = converter.analyse(material.female.analysis, RATE)
    reference_f0 = np.mean([mean_f0(clip, RATE) for clip in material.female.held_out])
    for audio in material.to_convert:
        converted = converter.convert(audio, RATE, base, target)
        assert converted.dtype == np.float32
        assert converted.size == audio.size
        assert np.abs(converted).max() <= 1.0
        assert abs(rms_db(converted) - rms_db(audio)) < 1.0
        before, after = mean_f0(audio, RATE), mean_f0(converted, RATE)
        closed = np.log(after / before) / np.log(reference_f0 / before)
        assert closed > 0.6, (before, after, reference_f0)


def test_other_rates_silence_and_tiny_chunks_pass_through(material: Material) -> None:
    converter, base = material.converter, material.base_profile
    target = converter.analyse(material.female.analysis, RATE)
    audio16 = resample_exact(material.to_convert[0], RATE, 16000)
    converted16 = converter.convert(audio16, 16000, base, target)
    assert converted16.size == audio16.size
    assert rms_db(converted16) > -35
    silence = np.zeros(5000, dtype=np.float32)
    np.testing.assert_array_equal(converter.convert(silence, RATE, base, target), silence)
    assert converter.convert(np.zeros(0, dtype=np.float32), RATE, base, target).size == 0
    assert converter.convert(audio16[:300], 16000, base, target).size == 300


def test_the_warp_follows_the_vocal_tract(material: Material) -> None:
    converter, base = material.converter, material.base_profile
    assert converter.warp_factor(base, base) == 1.0
    shifted = converter.analyse(material.shifted.analysis, RATE)
    assert converter.warp_factor(base, shifted) == pytest.approx(SHIFT, abs=0.05)


def test_converted_speech_sounds_more_like_the_reference(material: Material) -> None:
    converter, embedder, base = material.converter, material.embedder, material.base_profile
    for speaker in (material.female, material.shifted):
        target = converter.analyse(speaker.analysis, RATE)
        converted = [converter.convert(audio, RATE, base, target) for audio in material.to_convert]
        before = similarity(embedder, material.to_convert, speaker)
        after = similarity(embedder, converted, speaker)
        same = similarity(embedder, speaker.analysis, speaker)
        assert after > before + MARGIN, (before, after)
        assert same > after


def test_concurrent_conversions_match_serial_ones(material: Material) -> None:
    converter = WorldConverter(cache_size=1)  # every call in turn evicts the other pair's cache entries
    base, audio = material.base_profile, material.to_convert[1]
    targets = [converter.analyse(s.analysis, RATE) for s in (material.female, material.shifted)]
    expected = [converter.convert(audio, RATE, base, target) for target in targets]
    results: dict[int, list[Audio]] = {}

    def work(index: int) -> None:
        results[index] = [converter.convert(audio, RATE, base, targets[(index + n) % 2]) for n in range(2)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, outputs in results.items():
        for n, output in enumerate(outputs):
            np.testing.assert_array_equal(output, expected[(index + n) % 2])


def test_embeddings_are_unit_vectors_and_tell_speakers_apart(material: Material) -> None:
    embedder = material.embedder
    vector = embedder.embed(material.female.analysis[0], RATE)
    assert vector.shape == (256,)
    assert vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    same = embedder.similarity(vector, embedder.embed(material.female.held_out[0], RATE))
    other = embedder.similarity(vector, embedder.embed(material.to_convert[0], RATE))
    assert same > 0.8 > other + 0.3

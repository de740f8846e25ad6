"""The Fish Audio API's TTS request in our terms: the ``model`` header, latency, bitrates."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from openfish.config import TtsSettings
from openfish.errors import InvalidRequest
from openfish.services.tts.fish_request import DEFAULT_MODEL, FishTts, fish_models, fish_version
from openfish.services.tts.text_split import FIRST_PIECE_CHARS

SETTINGS = TtsSettings()


BASE = FishTts(
    text="Hello.",
    reference_id=None,
    speed=1.0,
    volume=0.0,
    format="mp3",
    sample_rate=None,
    mp3_bitrate=128,
    opus_bitrate=-1000,
    chunk_length=200,
    latency="balanced",
)


def speech(**fields: Any) -> FishTts:
    return replace(BASE, **fields)


def test_no_header_means_the_default_model() -> None:
    assert fish_version(None, SETTINGS) == fish_version(DEFAULT_MODEL, SETTINGS)


@pytest.mark.parametrize("version", ["v1", "v2", "s1", "v3-turbo", "v3-hd"])
def test_every_version_can_be_named_as_a_model(version: str) -> None:
    assert fish_version(version, SETTINGS) == version
    assert version in fish_models(SETTINGS)


def test_fish_names_win_over_version_names_and_unknown_ones_are_refused() -> None:
    renamed = TtsSettings(fish_models={"v1": "v2"})
    assert fish_version("v1", renamed) == "v2"
    assert fish_models(renamed).count("v1") == 1
    with pytest.raises(InvalidRequest, match=r"^model: must be one of .*not 'speech-9'"):
        fish_version("speech-9", SETTINGS)


def test_latency_and_bitrates_shape_the_request() -> None:
    balanced = speech().to_request("s1", SETTINGS)
    normal = speech(latency="normal", chunk_length=150).to_request("s1", SETTINGS)
    assert (balanced.piece_chars, normal.piece_chars, normal.first_piece_chars) == (200, 150, 150)
    assert balanced.first_piece_chars == FIRST_PIECE_CHARS  # the first audio leaves sooner
    assert balanced.bitrate_kbps == 128
    opus = speech(format="opus", sample_rate=16000).to_request(None, SETTINGS)
    assert (opus.bitrate_kbps, opus.sample_rate) == (None, None)  # automatic bitrate; always 48 kHz
    assert speech(format="opus", opus_bitrate=24).to_request(None, SETTINGS).bitrate_kbps == 24

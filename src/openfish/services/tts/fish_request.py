"""The Fish Audio API's TTS request in our terms: which version its ``model`` header means, how its
``latency`` and ``chunk_length`` cut the text, which bitrate applies to the chosen format (as
``openai_speech.py`` does for OpenAI's speech request).

Used by ``POST /v1/tts`` and ``/v1/tts/live`` (``api/fish_tts.py``, ``api/fish_live.py``); the
request that comes out is planned, billed and rendered exactly like ``/api/open/v1/speech/tts``.
"""

from __future__ import annotations

from dataclasses import dataclass

from openfish.config import TtsSettings
from openfish.errors import InvalidRequest
from openfish.services.tts.planner import TtsRequest
from openfish.services.tts.text_split import FIRST_PIECE_CHARS

#: The model a request without a ``model`` header gets (the Fish Audio API's default).
DEFAULT_MODEL = "s2.1-pro"
#: ``opus_bitrate`` that asks the encoder to choose (we then use our Opus default).
AUTO_OPUS_BITRATE = -1000


def fish_models(settings: TtsSettings) -> list[str]:
    """The ``model`` header values this server honours: Fish's names whose version it has, then
    our version names (as on the OpenAI speech path), so that every version can be reached."""
    fish = [model for model, version in settings.fish_models.items() if version in settings.versions]
    return [*fish, *(version for version in settings.versions if version not in settings.fish_models)]


def fish_version(model: str | None, settings: TtsSettings) -> str:
    """The version a ``model`` header names (none: :data:`DEFAULT_MODEL`): a Fish model name
    through ``settings.fish_models``, or one of our versions by name; 400 for others."""
    name = model or DEFAULT_MODEL
    version = settings.fish_models.get(name, name if name in settings.versions else None)
    if version is None or version not in settings.versions:
        raise InvalidRequest(f"model: must be one of {', '.join(fish_models(settings))}, not {name!r}")
    return version


@dataclass(frozen=True)
class FishTts:
    """The Fish Audio fields that decide what is said and how it is delivered."""

    text: str
    reference_id: str | None
    speed: float
    volume: float
    format: str
    sample_rate: int | None
    mp3_bitrate: int
    opus_bitrate: int
    chunk_length: int
    latency: str

    def to_request(self, model: str | None, settings: TtsSettings) -> TtsRequest:
        """Our TTS request for these fields and the ``model`` header.

        - ``chunk_length`` is the longest piece the text is cut into (at sentence and clause ends);
          ``latency`` ``balanced`` (and ``low``) keeps the first piece short, so the first audio
          leaves sooner; ``normal`` makes the first piece as long as the others (fewer seams).
        - The bitrate of the chosen format applies (``mp3_bitrate`` for mp3, ``opus_bitrate`` for
          opus; ``-1000``, automatic, is our Opus default), the other is not used.
        - Opus is always delivered at 48 kHz (what Opus decoders output), so ``sample_rate`` only
          applies to mp3, wav and pcm; absent, audio comes at the voice's own rate.
        """
        bitrate: int | None = None
        if self.format == "mp3":
            bitrate = self.mp3_bitrate
        elif self.format == "opus" and self.opus_bitrate != AUTO_OPUS_BITRATE:
            bitrate = self.opus_bitrate
        first = self.chunk_length if self.latency == "normal" else FIRST_PIECE_CHARS
        return TtsRequest(
            text=self.text,
            voice_id=self.reference_id or None,
            speed=self.speed,
            volume_db=self.volume,
            version=fish_version(model, settings),
            format=self.format,
            sample_rate=None if self.format == "opus" else self.sample_rate,
            bitrate_kbps=bitrate,
            piece_chars=self.chunk_length,
            first_piece_chars=first,
        )

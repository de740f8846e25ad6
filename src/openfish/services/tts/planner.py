"""Turning a TTS request into a synthesis plan: voice, engine, options, pieces and price.

Every refusal happens here, before any credits move or audio is made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from openfish.config import Settings
from openfish.engines.base import SpeechEngine, SynthesisOptions, VoiceConverter, VoiceInfo
from openfish.engines.registry import EngineRegistry
from openfish.errors import InvalidRequest, NotFound
from openfish.services.tts.language import detect_language
from openfish.services.tts.prosody import EMOTIONS, Prosody
from openfish.services.tts.text_split import (
    FIRST_PIECE_CHARS,
    PIECE_CHARS,
    is_speakable,
    split_for_streaming,
)


@dataclass(frozen=True)
class TtsRequest:
    """The fields of a TTS call, already type-checked and range-checked by the API layer."""

    text: str
    voice_id: str | None = None
    speed: float = 1.0
    volume_db: float = 0.0
    version: str = "v1"
    format: str = "mp3"
    emotion: str = "auto"
    language: str = "auto"
    #: Output sample rate; None: the voice's own. Checked against the format here.
    sample_rate: int | None = None
    #: Bitrate of mp3 or opus output in kbps; None: the format's default.
    bitrate_kbps: int | None = None
    #: Longest piece the text is cut into, and the longest first piece (short: the first audio
    #: leaves sooner); None: the defaults of ``text_split``.
    piece_chars: int | None = None
    first_piece_chars: int | None = None


@dataclass(frozen=True)
class Conversion:
    """Turning the base voice's audio into a made voice, chunk by chunk."""

    converter: VoiceConverter
    source: bytes
    target: bytes
    #: Identifies the made voice and its profile (for content addresses of stored audio).
    identity: str


@dataclass(frozen=True)
class SynthesisPlan:
    """Everything needed to make the audio, decided before any work starts."""

    engine: SpeechEngine
    voice: VoiceInfo
    options: SynthesisOptions
    pieces: list[str]
    format: str
    tempo: float
    pitch_semitones: float
    gain_db: float
    characters: int
    credits: int
    conversion: Conversion | None = None
    #: The rate the audio is delivered at (resampled from the engine's when they differ).
    output_rate: int | None = None
    bitrate_kbps: int | None = None
    #: The voice id the request named (a made voice's, not its base voice's); None: the default
    #: voice of the text's language. A charged request is a task of that voice.
    named_voice: str | None = None

    @property
    def sample_rate(self) -> int:
        """The sample rate of the delivered audio."""
        return self.output_rate or self.engine.sample_rate


class SpeechPlanner:
    """Validates TTS requests against the engines this server runs."""

    def __init__(self, engines: EngineRegistry, settings: Settings) -> None:
        self._engines = engines
        self._settings = settings

    def check_text(self, request: TtsRequest) -> None:
        """400 unless the text has something to say and is within the limit (checked before any
        voice is looked up: a malformed request is refused as such, whatever it names)."""
        if not is_speakable(request.text):
            raise InvalidRequest("text: must contain something to say (a letter or a digit)")
        if len(request.text) > self._settings.tts.max_text_chars:
            raise InvalidRequest(f"text: at most {self._settings.tts.max_text_chars} characters per request")

    def plan(self, request: TtsRequest) -> SynthesisPlan:
        """A plan for ``request``, or the 4xx that says why it cannot be honoured."""
        self.check_text(request)
        text = request.text.strip()
        plan = self.plan_stream(request)
        characters = len(text)
        first = request.first_piece_chars or FIRST_PIECE_CHARS
        longest = request.piece_chars or PIECE_CHARS
        return replace(
            plan,
            pieces=split_for_streaming(text, min(first, longest), longest),
            characters=characters,
            credits=characters * self._settings.tts.credits_per_character,
        )

    def plan_stream(self, request: TtsRequest) -> SynthesisPlan:
        """A plan without text yet (realtime: the text arrives later): voice, engine and options
        decided and checked, no pieces. With ``language=auto`` and no voice, ``request.text`` (may be
        empty) picks the language."""
        tts = self._settings.tts
        profile = tts.versions.get(request.version)
        if profile is None:
            raise InvalidRequest(f"version: must be one of {', '.join(tts.versions)}")
        if request.emotion not in ("auto", *EMOTIONS):
            raise InvalidRequest(f"emotion: must be one of auto, {', '.join(EMOTIONS)}")
        if request.emotion != "auto" and not profile.emotion:
            with_emotion = ", ".join(name for name, p in tts.versions.items() if p.emotion)
            raise InvalidRequest(f"emotion: only versions {with_emotion} support emotion control")
        _check_output(request)
        engine, voice = self._voice(request, request.text.strip())
        prosody = EMOTIONS.get(request.emotion, Prosody())
        options = SynthesisOptions(voice=voice.id, noise_scale=profile.noise_scale, noise_w=profile.noise_w)
        return SynthesisPlan(
            engine=engine,
            voice=voice,
            options=options,
            pieces=[],
            format=request.format,
            tempo=request.speed * prosody.speed,
            pitch_semitones=prosody.pitch_semitones,
            gain_db=request.volume_db + prosody.energy_db,
            characters=0,
            credits=0,
            output_rate=request.sample_rate,
            bitrate_kbps=request.bitrate_kbps,
        )

    def _voice(self, request: TtsRequest, text: str) -> tuple[SpeechEngine, VoiceInfo]:
        requested = None if request.language == "auto" else request.language.lower()
        if request.voice_id:
            found = self._engines.find_voice(request.voice_id)
            if found is None:
                raise NotFound(f"voiceId: no voice {request.voice_id!r}")
            engine, voice = found
            if requested and not _same_language(requested, voice.language):
                raise InvalidRequest(f"language: voice {voice.id} speaks {voice.language}, not {requested}")
            return engine, voice
        language = requested or detect_language(text)
        found = self._default_voice(language)
        if found is None:
            raise InvalidRequest(f"language: no engine on this server speaks {language!r}")
        return found

    def _default_voice(self, language: str) -> tuple[SpeechEngine, VoiceInfo] | None:
        """The configured default voice if it speaks ``language``, else the first voice that does
        (engines in registration order: Piper, Kokoro, then espeak-ng)."""
        default = self._engines.find_voice(self._settings.tts.default_voice)
        if default is not None and _same_language(language, default[1].language):
            return default
        for engine in self._engines.speech_engines():
            for voice in engine.voices():
                if _same_language(language, voice.language):
                    return engine, voice
        return None


#: Output rates each format can be delivered at (Ogg Opus is always 48 kHz; MP3 only has its
#: standard rates).
OUTPUT_RATES: dict[str, frozenset[int]] = {
    "mp3": frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}),
    "wav": frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}),
    "pcm": frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}),
    "opus": frozenset({48000}),
    "aac": frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}),
    "flac": frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}),
}
#: Bitrates (kbps) each format with a bitrate can be encoded at.
BITRATES: dict[str, frozenset[int]] = {
    "mp3": frozenset({32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}),
    "opus": frozenset({16, 24, 32, 48, 64, 96, 128}),
}


def _check_output(request: TtsRequest) -> None:
    """400 unless the format can be made at the requested rate and bitrate."""
    rates = OUTPUT_RATES.get(request.format)
    if request.sample_rate is not None and rates is not None and request.sample_rate not in rates:
        allowed = ", ".join(str(rate) for rate in sorted(rates))
        raise InvalidRequest(f"sample_rate: {request.format} can be made at {allowed} Hz")
    if request.bitrate_kbps is not None:
        bitrates = BITRATES.get(request.format)
        if bitrates is None:
            raise InvalidRequest(f"bitrate: {request.format} has no bitrate to set")
        if request.bitrate_kbps not in bitrates:
            allowed = ", ".join(str(rate) for rate in sorted(bitrates))
            raise InvalidRequest(f"bitrate: {request.format} can be encoded at {allowed} kbps")


def base_language(code: str) -> str:
    """The language of a code without region or variant, lowercased: ``en_US`` → ``en``; Mandarin
    (``cmn``) is ``zh``."""
    base = code.lower().replace("_", "-").split("-")[0]
    return {"cmn": "zh"}.get(base, base)


def _same_language(a: str, b: str) -> bool:
    """``en`` matches ``en-us`` and ``en_US``; ``zh`` matches ``cmn``."""
    return base_language(a) == base_language(b)

"""The engines one server runs, by name, and the voices they offer."""

from __future__ import annotations

import threading
from collections.abc import Callable

from openfish.config import Settings
from openfish.engines.base import (
    LipSyncEngine,
    SpeechEngine,
    TranscriptionEngine,
    VadEngine,
    VoiceConverter,
    VoiceInfo,
)


class EngineRegistry:
    """Holds loaded (or loadable) engines; built once per process and shared by apps."""

    def __init__(self) -> None:
        self._speech: dict[str, SpeechEngine] = {}
        self._converters: dict[str, VoiceConverter] = {}
        self._transcribers: dict[str, TranscriptionEngine] = {}
        self._vad: VadEngine | None = None
        self._lipsync: dict[str, LipSyncEngine] = {}
        self._derived: dict[tuple[str, ...], bytes] = {}
        self._derived_lock = threading.Lock()

    def derived(self, key: tuple[str, ...], make: Callable[[], bytes]) -> bytes:
        """Data computed once from the engines themselves (e.g. a base voice's speaker profile),
        kept for as long as the engines are loaded. Blocking: call it from the worker pool."""
        with self._derived_lock:
            if key not in self._derived:
                self._derived[key] = make()
            return self._derived[key]

    def register_converter(self, converter: VoiceConverter) -> None:
        """Add a voice converter under its own name."""
        if converter.name in self._converters:
            raise ValueError(f"converter {converter.name!r} is already registered")
        self._converters[converter.name] = converter

    def converter(self, name: str) -> VoiceConverter | None:
        """The voice converter called ``name``, if this server runs it."""
        return self._converters.get(name)

    def register(self, engine: SpeechEngine) -> None:
        """Add an engine under its own name."""
        if engine.name in self._speech:
            raise ValueError(f"engine {engine.name!r} is already registered")
        self._speech[engine.name] = engine

    def speech(self, name: str) -> SpeechEngine | None:
        """The speech engine called ``name``, if this server runs it."""
        return self._speech.get(name)

    def speech_engines(self) -> list[SpeechEngine]:
        """Every speech engine, in registration order."""
        return list(self._speech.values())

    def register_transcriber(self, engine: TranscriptionEngine) -> None:
        """Add a transcription engine under its own name."""
        if engine.name in self._transcribers:
            raise ValueError(f"transcriber {engine.name!r} is already registered")
        self._transcribers[engine.name] = engine

    def transcriber(self, name: str) -> TranscriptionEngine | None:
        """The transcription engine called ``name``, if this server runs it."""
        return self._transcribers.get(name)

    def transcribers(self) -> list[TranscriptionEngine]:
        """Every transcription engine, in registration order."""
        return list(self._transcribers.values())

    def register_vad(self, engine: VadEngine) -> None:
        """Set the voice-activity detector realtime ASR uses (one per server)."""
        if self._vad is not None:
            raise ValueError(f"a VAD ({self._vad.name!r}) is already registered")
        self._vad = engine

    @property
    def vad(self) -> VadEngine | None:
        """The voice-activity detector, if this server runs one."""
        return self._vad

    def register_lipsync(self, engine: LipSyncEngine) -> None:
        """Add a lip-sync engine under its own name."""
        if engine.name in self._lipsync:
            raise ValueError(f"lip-sync engine {engine.name!r} is already registered")
        self._lipsync[engine.name] = engine

    def lipsync(self, name: str) -> LipSyncEngine | None:
        """The lip-sync engine called ``name``, if this server runs it."""
        return self._lipsync.get(name)

    def lipsync_engines(self) -> list[LipSyncEngine]:
        """Every lip-sync engine, in registration order."""
        return list(self._lipsync.values())

    def load_all(self) -> None:
        """Load every engine's model (blocking; run off the event loop)."""
        self.load_speech()
        self.load_transcribers()
        self.load_lipsync()

    def load_speech(self) -> None:
        """Load the speech engines' models (blocking)."""
        for engine in self._speech.values():
            engine.load()

    def load_transcribers(self) -> None:
        """Load the transcription models and the VAD (blocking)."""
        for transcriber in self._transcribers.values():
            transcriber.load()
        if self._vad is not None:
            self._vad.load()

    def load_lipsync(self) -> None:
        """Load the lip-sync engines' models (blocking)."""
        for engine in self._lipsync.values():
            engine.load()

    def find_voice(self, voice_id: str) -> tuple[SpeechEngine, VoiceInfo] | None:
        """The engine and voice for a built-in voice id."""
        for engine in self._speech.values():
            for voice in engine.voices():
                if voice.id == voice_id:
                    return engine, voice
        return None


def build_engines(settings: Settings) -> EngineRegistry:
    """The engines ``settings`` ask for and this machine can run (nothing is loaded yet)."""
    from openfish.engines.espeak import EspeakEngine
    from openfish.engines.face_mesh import face_mesh_available
    from openfish.engines.kokoro import KokoroEngine
    from openfish.engines.piper import PiperEngine
    from openfish.engines.vad import SileroVad
    from openfish.engines.whisper import build_whisper_engines
    from openfish.engines.world import WorldConverter

    registry = EngineRegistry()
    registry.register(PiperEngine.bundled())
    if settings.tts.kokoro and KokoroEngine.available():
        # Before espeak-ng: the planner gives each language the first engine that speaks it.
        registry.register(KokoroEngine(settings.data_dir / "models"))
    if settings.tts.espeak and EspeakEngine.available():
        registry.register(EspeakEngine())
    registry.register_converter(WorldConverter())
    if settings.asr.enabled:
        # Cheap: the base model is joined from its two packages on first load(), not here.
        asr = settings.asr
        engines = build_whisper_engines(
            settings.data_dir, device=asr.device, compute_type=asr.compute_type, batch_size=asr.batch_size
        )
        for transcriber in engines:
            registry.register_transcriber(transcriber)
        registry.register_vad(SileroVad())
    if face_mesh_available():
        # Imported only here: the engine pulls in OpenCV, which a server without MediaPipe skips.
        from openfish.engines.lipsync import MouthWarpEngine

        registry.register_lipsync(MouthWarpEngine(max_pixels=settings.lipsync.max_pixels))
    return registry

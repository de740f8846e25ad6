"""The engines one server runs, by name, and the voices they offer."""

from __future__ import annotations

from openfish.config import Settings
from openfish.engines.base import SpeechEngine, VoiceInfo


class EngineRegistry:
    """Holds loaded (or loadable) engines; built once per process and shared by apps."""

    def __init__(self) -> None:
        self._speech: dict[str, SpeechEngine] = {}

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

    def load_all(self) -> None:
        """Load every engine's model (blocking; run off the event loop)."""
        for engine in self._speech.values():
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
    from openfish.engines.kokoro import KokoroEngine
    from openfish.engines.piper import PiperEngine

    registry = EngineRegistry()
    registry.register(PiperEngine.bundled())
    if settings.tts.kokoro and KokoroEngine.available():
        # Before espeak-ng: the planner gives each language the first engine that speaks it.
        registry.register(KokoroEngine(settings.data_dir / "models"))
    if settings.tts.espeak and EspeakEngine.available():
        registry.register(EspeakEngine())
    return registry

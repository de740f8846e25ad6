"""Guessing a language from its script."""

from __future__ import annotations

import pytest

from openfish.services.tts.language import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello, world.", "en"),
        ("こんにちは、今日はいい天気ですね。", "ja"),
        ("日本語の文章です", "ja"),
        ("你好，世界。", "zh"),
        ("안녕하세요", "ko"),
        ("Привет, мир.", "ru"),
        ("Γειά σου", "el"),
        ("مرحبا", "ar"),
        ("1234 !!!", "en"),
    ],
)
def test_script_decides_the_language(text: str, language: str) -> None:
    assert detect_language(text) == language

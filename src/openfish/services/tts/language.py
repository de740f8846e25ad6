"""Guessing the language of a text from its script, for ``language: "auto"``.

Only the writing system is used, so Latin-script text is taken as English (the default engine's
language); a caller who sends French or German should say so with ``language``.
"""

from __future__ import annotations

import unicodedata

#: Script name prefix (from Unicode character names) → language code.
_SCRIPTS = (
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("HANGUL", "ko"),
    ("CJK", "zh"),
    ("CYRILLIC", "ru"),
    ("GREEK", "el"),
    ("ARABIC", "ar"),
    ("HEBREW", "he"),
    ("THAI", "th"),
    ("DEVANAGARI", "hi"),
    ("LATIN", "en"),
)


def detect_language(text: str, default: str = "en") -> str:
    """The language whose script most letters of ``text`` are written in (kana beats kanji)."""
    counts: dict[str, int] = {}
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        for prefix, language in _SCRIPTS:
            if name.startswith(prefix):
                counts[language] = counts.get(language, 0) + 1
                break
    if not counts:
        return default
    if counts.get("ja"):
        # Japanese mixes kanji (CJK) with kana; any kana means Japanese, not Chinese.
        return "ja"
    return max(counts, key=lambda language: counts[language])

"""Splitting text into pieces that can be synthesized and streamed one after another.

The first piece is kept short so the first audio leaves quickly; later pieces may be longer (fewer
seams, better prosody). Splits prefer sentence ends, then clause punctuation, then phrase
boundaries (before conjunctions), then any space.
"""

from __future__ import annotations

import re
import unicodedata

FIRST_PIECE_CHARS = 40
PIECE_CHARS = 180

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+|(?<=[、，；：])")
_PHRASE_START = re.compile(
    r"\s+(?=(?:and|but|or|so|because|which|who|that|when|while|where|if|although|though|then)\b)",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")


def is_speakable(text: str) -> bool:
    """Whether ``text`` holds anything a voice can say: a letter or a digit in any script.

    Punctuation, symbols, spaces and invisible characters (zero-width spaces, byte order marks,
    soft hyphens, control characters) alone make no speech, so such text is refused rather than
    billed for silence.
    """
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def split_for_streaming(
    text: str, first_chars: int = FIRST_PIECE_CHARS, max_chars: int = PIECE_CHARS
) -> list[str]:
    """Pieces of ``text`` (whitespace-normalized, never empty) in speaking order."""
    pieces: list[str] = []
    for sentence in _split(text.strip(), _SENTENCE_END):
        limit = first_chars if not pieces else max_chars
        pieces.extend(_fit(sentence, limit, max_chars))
    return pieces


def _fit(text: str, limit: int, max_chars: int) -> list[str]:
    """``text`` in pieces no longer than ``limit`` (first) / ``max_chars`` (rest) where possible."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return [text] if text else []
    for boundary in (_CLAUSE_END, _PHRASE_START, _SPACE):
        parts = _split(text, boundary)
        if len(parts) > 1:
            return _pack(parts, limit, max_chars)
    # One unbroken run (e.g. CJK without punctuation, or a very long token): cut it.
    return [text[:limit]] + [text[i : i + max_chars] for i in range(limit, len(text), max_chars)]


def _pack(parts: list[str], limit: int, max_chars: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = current + part
        if current.strip() and len(candidate.strip()) > (limit if not pieces else max_chars):
            pieces.append(current.strip())
            current = part
        else:
            current = candidate
    if current.strip():
        pieces.append(current.strip())
    result: list[str] = []
    for piece in pieces:
        piece_limit = limit if not result else max_chars
        result.extend(_fit(piece, piece_limit, max_chars) if len(piece) > piece_limit else [piece])
    return result


def _split(text: str, boundary: re.Pattern[str]) -> list[str]:
    """``text`` cut after each boundary, separators kept, so joining the parts gives ``text`` back."""
    parts: list[str] = []
    start = 0
    for match in boundary.finditer(text):
        if match.end() > start:
            parts.append(text[start : match.end()])
            start = match.end()
    parts.append(text[start:])
    return [part for part in parts if part.strip()]


#: A piece may end where text arrives so far if it ends a sentence or clause, unless the mark could
#: still be part of something longer: a number ("3." of "3.5", "1," of "1,000") or an abbreviation.
_LIVE_BOUNDARY = re.compile(
    r"(?P<sentence>[.!?…]+[\"'”’)\]]*(?=\s)|(?<!\d)[.!?…]+[\"'”’)\]]*$|[。！？]+|\n+)"
    r"|(?P<clause>[,;:—–](?=\s)|(?<!\d)[,;:—–]$|[、，；：])"
)
_ABBREVIATION = re.compile(r"(?:^|\s)(?:mr|mrs|ms|dr|st|vs|etc|e\.g|i\.e|no|jr|sr|prof)\.$", re.IGNORECASE)
#: Clause pieces shorter than this wait for more text ("Well," alone would sound clipped).
MIN_LIVE_CLAUSE_CHARS = 10


class LiveTextBuffer:
    """Text that arrives in fragments (e.g. from a language model), cut into speakable pieces as
    soon as each is complete, so speech can start before the text is all there."""

    def __init__(self, max_chars: int = PIECE_CHARS) -> None:
        self._text = ""
        self._max_chars = max_chars

    @property
    def pending(self) -> str:
        """Text received but not yet returned as a piece."""
        return self._text

    def add(self, text: str) -> list[str]:
        """Append ``text``; returns the pieces it completed, in order."""
        self._text += text
        pieces: list[str] = []
        start = 0
        for match in _LIVE_BOUNDARY.finditer(self._text):
            candidate = self._text[start : match.end()]
            if match.group("sentence") and _ABBREVIATION.search(candidate.rstrip("\"'”’)]")):
                continue
            if match.group("clause") and len(candidate.strip()) < MIN_LIVE_CLAUSE_CHARS:
                continue
            if candidate.strip():
                pieces.append(_SPACE.sub(" ", candidate).strip())
            start = match.end()
        rest = self._text[start:]
        while len(rest) > self._max_chars:
            # No boundary for a long stretch: cut at the last space that keeps the piece in bounds.
            cut = rest.rfind(" ", 1, self._max_chars)
            cut = cut if cut > 0 else self._max_chars
            pieces.append(_SPACE.sub(" ", rest[:cut]).strip())
            rest = rest[cut:]
        self._text = rest
        return [piece for piece in pieces if piece]

    def flush(self) -> list[str]:
        """Everything still buffered, as pieces (``flush`` / ``stop`` from the client)."""
        rest, self._text = self._text, ""
        return split_for_streaming(rest) if rest.strip() else []

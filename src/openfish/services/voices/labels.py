"""What a voice carries besides its audio: tags to find it by and a cover image (the Fish Audio
API's voice models have both), checked before they are stored."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from openfish.errors import InvalidRequest, PayloadTooLarge

MAX_TAGS = 20
MAX_TAG_CHARS = 40
#: A tag: letters, digits, spaces and ``. + - _``, not starting with a space (so it can be matched
#: inside the stored list). The schema publishes the same pattern.
TAG_PATTERN = r"^[\w.+-][\w .+-]*$"
_TAG = re.compile(TAG_PATTERN.strip("^$"))
MAX_COVER_BYTES = 5 << 20
#: Image types by their first bytes (WebP also needs ``WEBP`` at offset 8).
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),
)


def check_tags(tags: Sequence[str], field: str = "tags") -> list[str]:
    """The tags lowercased, trailing spaces dropped, without repeats (in the order given); 400 for
    a tag that is empty, too long, or holds characters other than letters, digits, spaces and
    ``. + - _``."""
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"{field}: at most {MAX_TAGS} tags")
    checked: list[str] = []
    for index, tag in enumerate(tags):
        if len(tag) > MAX_TAG_CHARS or not _TAG.fullmatch(tag):
            raise InvalidRequest(
                f"{field}[{index}]: 1-{MAX_TAG_CHARS} letters, digits, spaces or . + - _ characters"
            )
        clean = tag.rstrip().lower()
        if clean not in checked:
            checked.append(clean)
    return checked


@dataclass(frozen=True)
class Cover:
    """A checked cover image and its content type."""

    data: bytes
    content_type: str


def check_cover(data: bytes, field: str = "cover_image") -> Cover:
    """The image if it is a PNG, JPEG, GIF or WebP of at most 5 MiB; 400 or 413 otherwise."""
    if len(data) > MAX_COVER_BYTES:
        raise PayloadTooLarge(f"{field}: larger than {MAX_COVER_BYTES} bytes")
    for magic, content_type in _IMAGE_MAGIC:
        if data.startswith(magic) and (content_type != "image/webp" or data[8:12] == b"WEBP"):
            return Cover(data, content_type)
    raise InvalidRequest(f"{field}: must be a PNG, JPEG, GIF or WebP image")

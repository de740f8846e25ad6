"""The official ``openai`` client pointed at an openfish app served over real TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import numpy as np
from openai import AsyncOpenAI

from openfish.audio.decode import DecodedAudio, decode_audio
from tests.conftest import Caller, Harness

Serve = Callable[[Harness], Awaitable[str]]


@asynccontextmanager
async def openai_client(
    harness: Harness, serve: Serve, caller: Caller, *, max_retries: int = 0
) -> AsyncIterator[AsyncOpenAI]:
    """``AsyncOpenAI(api_key=TOKEN, base_url=SERVER + "/v1")``, as a user would write it (the async
    client: the server runs in the test's own event loop)."""
    server = (await serve(harness)).replace("ws://", "http://", 1)
    client = AsyncOpenAI(api_key=caller.token, base_url=server + "/v1", max_retries=max_retries)
    try:
        yield client
    finally:
        await client.close()


def decoded_speech(data: bytes, fmt: str) -> DecodedAudio:
    """Audio of any response format; ``pcm`` is OpenAI's: 24 kHz signed 16-bit little-endian mono."""
    if fmt == "pcm":
        assert len(data) % 2 == 0
        return DecodedAudio(
            samples=(np.frombuffer(data, dtype="<i2") / 32768).astype(np.float32), sample_rate=24000
        )
    return decode_audio(data)

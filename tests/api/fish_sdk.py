"""The official Fish Audio SDKs (``fishaudio.FishAudio`` and the older ``fish_audio_sdk.Session``)
pointed at an app served over real TCP, for the Fish Audio API tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import fish_audio_sdk
import fishaudio
import numpy as np

from openfish.audio.decode import DecodedAudio, decode_audio
from tests.conftest import Caller, Harness

Serve = Callable[[Harness], Awaitable[str]]


async def base_url(harness: Harness, serve: Serve) -> str:
    """The http:// base URL of ``harness``'s app, served on a free loopback port."""
    return (await serve(harness)).replace("ws://", "http://", 1)


class Clients:
    """Makes SDK clients as a user would, and closes them all at the end of the test."""

    def __init__(self) -> None:
        self._opened: list[fishaudio.FishAudio | fish_audio_sdk.Session] = []

    def client(self, caller: Caller | str, base: str) -> fishaudio.FishAudio:
        """The current SDK's client (``fishaudio.FishAudio``) with the caller's token."""
        token = caller if isinstance(caller, str) else caller.token
        made = fishaudio.FishAudio(api_key=token, base_url=base)
        self._opened.append(made)
        return made

    def session(self, caller: Caller, base: str) -> fish_audio_sdk.Session:
        """The older SDK's session (``fish_audio_sdk.Session``) with the caller's token."""
        made = fish_audio_sdk.Session(caller.token, base_url=base)
        self._opened.append(made)
        return made

    async def close(self) -> None:
        for made in self._opened:
            if isinstance(made, fishaudio.FishAudio):
                made.close()
            else:
                made._sync_client.close()
                await made._async_client.aclose()


def decoded(audio: bytes, fmt: str, pcm_rate: int = 22050) -> DecodedAudio:
    """Audio of ``fmt`` decoded (raw PCM is 16-bit little-endian mono at ``pcm_rate``)."""
    if fmt == "pcm":
        assert len(audio) % 2 == 0
        samples = (np.frombuffer(audio, dtype="<i2") / 32768).astype(np.float32)
        return DecodedAudio(samples=samples, sample_rate=pcm_rate)
    return decode_audio(audio)

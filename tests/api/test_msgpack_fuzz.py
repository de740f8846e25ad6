"""Generated MessagePack bodies (hypothesis) on every path that takes MessagePack: whatever arrives —
any type where a string belongs, bin and ext values, deep nesting, truncated or trailing bytes — the
answer is a 2xx or a 4xx in the path's envelope, never a 5xx, and a refused request costs nothing."""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Caller, Harness

#: Paths that read MessagePack bodies, with the fields their clients send.
PATHS = {
    "/api/open/v1/speech/tts": ["text", "voiceId", "format", "speed", "version", "emotion", "cache"],
    "/api/open/tts": ["text", "reference_id", "format", "volume", "language"],
    "/api/open/v1/speech/tts/jobs": ["text", "modelId", "format", "speed"],
    "/api/open/v1/media/lip-sync/jobs": ["videoUrl", "audioUrl"],
    "/api/open/v1/speech/transcriptions": ["audioUrl", "language", "model", "words"],
    "/api/open/v1/profile": ["webhookUrl"],
    "/api/open/list-models": ["modelType", "includePersonal", "page", "pageSize"],
    "/api/open/delete-model": ["modelId"],
    # The Fish Audio API's (its SDKs send MessagePack).
    "/v1/tts": ["text", "reference_id", "references", "format", "sample_rate", "prosody", "latency"],
    "/v1/asr": ["audio", "language", "ignore_timestamps"],
}
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _bodies(fields: list[str]) -> st.SearchStrategy[bytes]:
    # Plausible values too, so that many requests get far enough to be served (or wrongly served).
    plausible = st.sampled_from(["Hello there.", b"Hello there.", "wav", "pcm", "en", 1.0, 1, True])
    known = st.fixed_dictionaries({}, optional=dict.fromkeys(fields, plausible | _VALUES))
    anything = st.dictionaries(st.sampled_from(fields) | st.text(max_size=6), plausible | _VALUES, max_size=5)
    packed = (known | known | anything).map(lambda value: msgpack.packb(value, use_bin_type=True))
    return st.one_of(
        packed,
        packed,
        _VALUES.map(lambda value: msgpack.packb(value, use_bin_type=True)),  # not a map at all
        packed.flatmap(lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])),  # truncated
        packed.map(lambda raw: raw + b"\xc1"),  # trailing garbage (0xc1 is never valid)
        st.binary(max_size=40),
    )


def generated(fields: list[str], count: int) -> list[bytes]:
    """``count`` bodies for a path, the same ones every run."""
    bodies: list[bytes] = []

    @settings(max_examples=count, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(_bodies(fields))
    def gather(body: bytes) -> None:
        bodies.append(body)

    gather()
    return bodies


async def test_generated_msgpack_bodies_never_cause_a_server_error(harness: Harness) -> None:
    caller: Caller = await harness.new_caller(credits=10**6)
    for path, fields in PATHS.items():
        legacy = path.startswith("/api/open/") and not path.startswith("/api/open/v1/")
        envelope = {"error", "details", "code"} if legacy else {"code", "message", "requestId"}
        if not path.startswith("/api/open/"):
            envelope = {"status", "message"}  # the Fish Audio API's
        for body in generated(fields, 100):
            before = await harness.balance(caller.account_id)
            response = await harness.client.post(
                path, headers={**caller.headers, "Content-Type": "application/msgpack"}, content=body
            )
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code < 300 and "text" in fields:
                # Only a MessagePack string is text: never bin, never a number.
                assert isinstance(msgpack.unpackb(body, raw=False)["text"], str), (path, body)
            if response.status_code >= 400:
                assert set(response.json()) == envelope, (path, body, response.text)
                assert await harness.balance(caller.account_id) == before, (path, body)

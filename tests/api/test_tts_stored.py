"""cache=true: the audio is stored once, served behind an expiring signed URL, charged like a stream."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from openfish.audio.decode import decode_audio
from openfish.services.tts.synthesis import STORED_AREA
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness

TTS = "/api/open/v1/speech/tts"
TEXT = "Stored speech, fetched later."


async def store(harness: Harness, caller: Caller, **fields: object) -> dict[str, object]:
    response = await harness.client.post(
        TTS, headers=caller.headers, json={"text": TEXT, "cache": True, **fields}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def blob_files(harness: Harness) -> list[str]:
    """The stored audio blobs, whichever back-end keeps them."""
    return sorted(blob.key for blob in harness.services.blobs.list(STORED_AREA))


async def test_cached_audio_is_served_by_its_signed_url(harness: Harness, caller: Caller) -> None:
    body = await store(harness, caller, format="wav")
    assert body["success"] is True
    assert body["format"] == "wav"
    assert body["characters_used"] == body["credits_used"] == len(TEXT)
    assert body["quota_remaining"] == 1000 - len(TEXT)
    assert isinstance(body["expires_at"], str)
    url = str(body["audio_url"])
    audio = await harness.client.get(url)
    assert audio.status_code == 200
    assert audio.headers["Content-Type"] == "audio/wav"
    decoded = decode_audio(audio.content)
    assert decoded.sample_rate == 22050
    assert 1.0 < decoded.duration_seconds < 4.0
    # The stored WAV has exact sizes in its header.
    assert int.from_bytes(audio.content[4:8], "little") == len(audio.content) - 8

    part = await harness.client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == audio.content[:100]


@pytest.mark.parametrize(("fmt", "content_type"), [("aac", "audio/aac"), ("flac", "audio/flac")])
async def test_aac_and_flac_are_stored_and_served(
    harness: Harness, caller: Caller, fmt: str, content_type: str
) -> None:
    body = await store(harness, caller, format=fmt)
    audio = await harness.client.get(str(body["audio_url"]))
    assert audio.status_code == 200
    assert audio.headers["Content-Type"] == content_type
    assert 1.0 < decode_audio(audio.content).duration_seconds < 4.0


async def test_identical_requests_reuse_the_stored_audio_and_are_charged_each_time(
    harness: Harness, caller: Caller
) -> None:
    first = await store(harness, caller, format="mp3")
    files = blob_files(harness)
    second = await store(harness, caller, format="mp3")
    assert blob_files(harness) == files
    assert len(files) == 1
    assert urlsplit(str(first["audio_url"])).path == urlsplit(str(second["audio_url"])).path
    assert (await harness.services.accounts.get_account(caller.account_id)).credits == 1000 - 2 * len(TEXT)
    different = await store(harness, caller, format="mp3", speed=1.5)
    assert len(blob_files(harness)) == 2
    assert urlsplit(str(different["audio_url"])).path != urlsplit(str(first["audio_url"])).path


@pytest.mark.parametrize("tamper", ["sig", "expires", "name"])
async def test_a_tampered_url_is_refused(harness: Harness, caller: Caller, tamper: str) -> None:
    url = urlsplit(str((await store(harness, caller))["audio_url"]))
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    path = url.path
    if tamper == "sig":
        query["sig"] = ("A" if query["sig"][0] != "A" else "B") + query["sig"][1:]
    elif tamper == "expires":
        query["expires"] = str(int(query["expires"]) + 3600)
    else:
        path = path.replace(path.rsplit("/", 1)[1][:4], "0000")
    response = await harness.client.get(path, params=query)
    assert response.status_code in (403, 404)
    assert response.json()["code"] in ("forbidden", "not_found")


async def test_an_expired_url_is_refused(
    harness: Harness, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str((await store(harness, caller))["audio_url"])
    signer = harness.services.signer
    monkeypatch.setattr(signer, "_clock", lambda: 10**10)
    response = await harness.client.get(url)
    error = assert_v1_error(response, 403, "forbidden")
    assert "expired" in error["message"]


async def test_unknown_audio_names_are_404(harness: Harness) -> None:
    for name in ("nothing.mp3", "../secret.key", "a" * 64 + "_22050.mp3"):
        response = await harness.client.get(f"/api/open/v1/audio/{name}", params={"expires": 1, "sig": "x"})
        assert response.status_code in (403, 404), name


async def test_legacy_path_stores_too(harness: Harness, caller: Caller) -> None:
    response = await harness.client.post(
        "/api/open/tts",
        headers=caller.headers,
        json={"text": TEXT, "reference_id": "en_US-joe-medium", "cache": True, "format": "opus"},
    )
    assert response.status_code == 200
    body = response.json()
    assert {"success", "audio_url", "format", "characters_used", "quota_remaining"} <= set(body)
    audio = await harness.client.get(body["audio_url"])
    assert audio.headers["Content-Type"] == "audio/ogg"
    assert decode_audio(audio.content).sample_rate == 48000


MALFORMED_QUERIES = [
    pytest.param("sig=%C3%A9", id="non-ascii-sig"),
    pytest.param("sig=%00", id="nul-sig"),
    pytest.param("sig=" + "A" * 5000, id="huge-sig"),
    pytest.param("sig=", id="empty-sig"),
    pytest.param("", id="no-sig"),
    pytest.param("expires=%C3%A9", id="non-ascii-expires"),
    pytest.param("expires=1e9", id="float-expires"),
    pytest.param("expires=" + "9" * 5000, id="huge-expires"),
    pytest.param("expires=-5", id="negative-expires"),
]


@pytest.mark.parametrize("malformed", MALFORMED_QUERIES)
async def test_a_malformed_signature_or_expiry_is_403_never_500(
    harness: Harness, caller: Caller, malformed: str
) -> None:
    # The signature is the only credential of these URLs: whatever a stranger puts there must be
    # refused in the envelope, before any file is looked at.
    url = urlsplit(str((await store(harness, caller))["audio_url"]))
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    field = malformed.partition("=")[0] or "sig"
    kept = next(f"{key}={query[key]}" for key in ("expires", "sig") if key != field)
    target = f"{url.path}?{kept}" + (f"&{malformed}" if malformed else "")
    response = await harness.client.get(target)
    assert_v1_error(response, 403, "forbidden")


async def test_a_malformed_signature_on_a_lip_sync_result_is_403(harness: Harness) -> None:
    name = "job_" + "0" * 32 + ".mp4"
    response = await harness.client.get(
        f"/api/open/v1/media/lip-sync/results/{name}?expires=9999999999&sig=%C3%A9"
    )
    assert_v1_error(response, 403, "forbidden")


async def test_ranges_are_served_from_the_blob_store(harness: Harness, caller: Caller) -> None:
    url = str((await store(harness, caller, format="wav"))["audio_url"])
    whole = await harness.client.get(url)
    size = len(whole.content)
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert int(whole.headers["Content-Length"]) == size
    cases = {
        "bytes=10-19": (206, whole.content[10:20], f"bytes 10-19/{size}"),
        "bytes=-16": (206, whole.content[-16:], f"bytes {size - 16}-{size - 1}/{size}"),
        f"bytes={size - 4}-": (206, whole.content[-4:], f"bytes {size - 4}-{size - 1}/{size}"),
        f"bytes=0-{size * 2}": (206, whole.content, f"bytes 0-{size - 1}/{size}"),
        "bytes=0-1, 5-6": (200, whole.content, None),  # several ranges: the whole file, as RFC 9110 allows
        "lines=1-2": (200, whole.content, None),
    }
    for header, (status, content, content_range) in cases.items():
        part = await harness.client.get(url, headers={"Range": header})
        assert part.status_code == status, header
        assert part.content == content, header
        assert part.headers.get("Content-Range") == content_range, header
    beyond = await harness.client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"

"""Lip-sync jobs through the API: submit, poll, download; bad input; isolation; credits."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from openfish.audio.decode import decode_audio
from tests.api.test_handlers import assert_v1_error
from tests.conftest import Caller, Harness, Receiver
from tests.media_clips import face_video, faceless_video
from tests.voice_clips import silence_wav

JOBS = "/api/open/v1/media/lip-sync/jobs"
SPEECH = "Hello there. I am talking now, and then I stop."


async def upload(harness: Harness, caller: Caller, data: bytes, name: str = "clip.mp4") -> str:
    response = await harness.client.post(
        "/api/open/v1/files", headers=caller.headers, files={"file": (name, data)}
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url


async def spoken(harness: Harness, caller: Caller) -> tuple[str, float]:
    """A stored-audio URL of speech made by this server, and its length."""
    response = await harness.client.post(
        "/api/open/v1/speech/tts",
        headers=caller.headers,
        json={"text": SPEECH, "format": "wav", "cache": True},
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["audio_url"]
    audio = await harness.client.get(url)
    return url, decode_audio(audio.content).duration_seconds


async def wait_for(harness: Harness, caller: Caller, job_id: str) -> dict[str, Any]:
    """The job once it has ended (a render of these clips takes seconds)."""
    async with asyncio.timeout(120):
        while True:
            response = await harness.client.get(f"{JOBS}/{job_id}", headers=caller.headers)
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            if data["status"] in ("completed", "failed"):
                return data
            await asyncio.sleep(0.2)


def video_bytes(tmp_path: Path, *, face: bool = True, seconds: float = 2.0) -> bytes:
    path = tmp_path / ("face.mp4" if face else "faceless.mp4")
    maker = face_video if face else faceless_video
    return maker(path, seconds, fps=25, size=(320, 240)).read_bytes()


async def test_a_job_renders_a_synced_video_and_charges_per_second(harness: Harness, tmp_path: Path) -> None:
    caller = await harness.new_caller(credits=1000)
    video_url = await upload(harness, caller, video_bytes(tmp_path))
    audio_url, seconds = await spoken(harness, caller)
    before = await harness.balance(caller.account_id)
    submitted = await harness.client.post(
        JOBS, headers=caller.headers, json={"videoUrl": video_url, "audioUrl": audio_url}
    )
    assert submitted.status_code == 202, submitted.text
    created = submitted.json()
    assert created["success"] is True
    assert created["data"]["status"] == "pending"
    credits = math.ceil(seconds) * 2
    assert await harness.balance(caller.account_id) == before - credits  # held
    job = await wait_for(harness, caller, created["data"]["id"])
    assert job["status"] == "completed", job
    assert job["progress"] == 100
    assert job["credits_used"] == credits
    assert job["error_message"] is None
    assert job["completed_at"] is not None
    assert await harness.balance(caller.account_id) == before - credits  # captured, not twice

    result = await harness.client.get(job["result_url"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(result.content)
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == (320, 240)
        assert float(video.average_rate or 0) == pytest.approx(25, abs=0.1)
        duration = float(container.duration or 0) / av.time_base
    assert duration == pytest.approx(seconds, abs=0.15)  # as long as the audio (the video loops)

    listed = await harness.client.get(JOBS, headers=caller.headers, params={"status": "completed"})
    page = listed.json()["data"]
    assert [item["id"] for item in page["items"]] == [job["id"]]
    assert (page["total"], page["page"], page["limit"], page["total_pages"]) == (1, 1, 20, 1)
    legacy = await harness.client.get(
        "/api/open/lip-sync/query", headers=caller.headers, params={"id": job["id"]}
    )
    assert legacy.json()["data"]["status"] == "completed"
    legacy_list = await harness.client.get("/api/open/lip-sync/list", headers=caller.headers)
    assert legacy_list.json()["data"]["total"] == 1


async def test_jobs_are_private_to_their_account(harness: Harness, tmp_path: Path) -> None:
    owner = await harness.new_caller()
    other = await harness.new_caller()
    video_url = await upload(harness, owner, video_bytes(tmp_path))
    audio_url, _ = await spoken(harness, owner)
    submitted = await harness.client.post(
        JOBS, headers=owner.headers, json={"videoUrl": video_url, "audioUrl": audio_url}
    )
    job_id = submitted.json()["data"]["id"]
    assert_v1_error(await harness.client.get(f"{JOBS}/{job_id}", headers=other.headers), 404, "not_found")
    legacy = await harness.client.get(
        "/api/open/lip-sync/query", headers=other.headers, params={"id": job_id}
    )
    assert legacy.status_code == 404
    assert set(legacy.json()) == {"error", "details", "code"}
    assert (await harness.client.get(JOBS, headers=other.headers)).json()["data"]["total"] == 0
    # Nor can another account use the owner's upload as input.
    stolen = await harness.client.post(
        JOBS, headers=other.headers, json={"videoUrl": video_url, "audioUrl": audio_url}
    )
    assert_v1_error(stolen, 404, "not_found")
    await wait_for(harness, owner, job_id)


async def test_bad_input_is_refused_at_submit_and_costs_nothing(harness: Harness, tmp_path: Path) -> None:
    caller = await harness.new_caller(credits=1000)
    video_url = await upload(harness, caller, video_bytes(tmp_path))
    audio_url, _ = await spoken(harness, caller)
    silent_url = await upload(harness, caller, silence_wav(3.0), "quiet.wav")
    junk_url = await upload(harness, caller, b"\x00\x01not media at all" * 100, "junk.bin")
    cases = [
        ({"videoUrl": audio_url, "audioUrl": audio_url}, 400, "videoUrl"),
        ({"videoUrl": junk_url, "audioUrl": audio_url}, 400, "videoUrl"),
        ({"videoUrl": video_url, "audioUrl": junk_url}, 400, "audioUrl"),
        ({"videoUrl": video_url, "audioUrl": silent_url}, 422, "no speech"),
        ({"videoUrl": video_url + "x", "audioUrl": audio_url}, 404, "file"),
        ({"videoUrl": "https://example.com/v.mp4", "audioUrl": audio_url}, 403, "external"),
        ({"videoUrl": video_url}, 400, "audioUrl"),
        ({"videoUrl": video_url, "audioUrl": audio_url, "extra": 1}, 400, "extra"),
    ]
    before = await harness.balance(caller.account_id)
    for body, status, words in cases:
        response = await harness.client.post(JOBS, headers=caller.headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert words.lower() in response.json()["message"].lower(), (body, response.text)
    assert await harness.balance(caller.account_id) == before
    assert (await harness.client.get(JOBS, headers=caller.headers)).json()["data"]["total"] == 0
    poor = await harness.new_caller(credits=1)
    poor_video = await upload(harness, poor, video_bytes(tmp_path))
    refused = await harness.client.post(
        JOBS, headers=poor.headers, json={"videoUrl": poor_video, "audioUrl": audio_url}
    )
    assert_v1_error(refused, 402, "insufficient_credits")


async def test_a_video_without_a_face_fails_the_job_and_releases_the_credits(
    harness: Harness, tmp_path: Path
) -> None:
    caller = await harness.new_caller(credits=1000)
    video_url = await upload(harness, caller, video_bytes(tmp_path, face=False))
    audio_url, _ = await spoken(harness, caller)
    before = await harness.balance(caller.account_id)
    submitted = await harness.client.post(
        JOBS, headers=caller.headers, json={"videoUrl": video_url, "audioUrl": audio_url}
    )
    job = await wait_for(harness, caller, submitted.json()["data"]["id"])
    assert job["status"] == "failed"
    assert "no face" in job["error_message"]
    assert job["result_url"] is None
    assert job["credits_used"] == 0
    assert await harness.balance(caller.account_id) == before


async def test_one_idempotency_key_queues_one_job_and_its_end_is_announced(
    harness_factory: Callable[..., Any], receiver: Receiver, tmp_path: Path
) -> None:
    harness: Harness = await harness_factory(webhooks={"allow_http": True, "allow_private_targets": True})
    caller = await harness.new_caller(credits=1000)
    await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": receiver.url()}
    )
    video_url = await upload(harness, caller, video_bytes(tmp_path))
    audio_url, seconds = await spoken(harness, caller)
    before = await harness.balance(caller.account_id)
    body = {"videoUrl": video_url, "audioUrl": audio_url}
    headers = {**caller.headers, "Idempotency-Key": "lip-1"}
    first = await harness.client.post("/api/open/lip-sync/create", headers=headers, json=body)
    again = await harness.client.post("/api/open/lip-sync/create", headers=headers, json=body)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    credits = math.ceil(seconds) * 2
    assert await harness.balance(caller.account_id) == before - credits
    job = await wait_for(harness, caller, first.json()["data"]["id"])
    await asyncio.wait_for(receiver.arrived.wait(), 20)
    [request] = receiver.requests
    event = json.loads(request.body)
    assert event["type"] == "lipsync.job.completed"
    assert (event["jobId"], event["status"], event["creditsUsed"]) == (job["id"], "completed", credits)
    assert (await harness.client.get(event["resultUrl"])).headers["content-type"] == "video/mp4"

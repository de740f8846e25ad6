"""Transcription jobs over the API: submitted with the sync call's inputs and the price held, run by
the embedded worker with progress, settled once; captions behind signed links; bad input refused
at submit with nothing charged; another account's job is a 404."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import select

from openfish.audio.decode import decode_audio
from openfish.audio.encode import encode_complete
from openfish.engines.registry import EngineRegistry
from openfish.services.asr.jobs import INPUT_AREA
from openfish.store.models import LedgerEntry
from tests.api.test_handlers import assert_v1_error
from tests.api.test_transcriptions import stored_speech
from tests.audio_checks import word_error_rate
from tests.captions import assert_timed_inside, parse_srt, parse_vtt
from tests.conftest import Caller, Harness, Receiver
from tests.services.asr.gated import LONG_SENTENCES, GatedEngine, long_speech
from tests.voice_clips import silence_wav

JOBS = "/api/open/v1/speech/transcriptions/jobs"
SPOKEN = (
    "The weather today is sunny with a light breeze from the west. "
    "Our neighbours planted tomatoes and beans this spring. "
    "Please send the report to my office before noon."
)


async def wait_for(harness: Harness, caller: Caller, job_id: str, seconds: float = 120) -> dict[str, Any]:
    """The job once it has ended."""
    async with asyncio.timeout(seconds):
        while True:
            response = await harness.client.get(f"{JOBS}/{job_id}", headers=caller.headers)
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                return job
            await asyncio.sleep(0.1)


async def ledger(harness: Harness, reference: str) -> list[str]:
    async with harness.services.db.session() as session:
        rows = await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.reference == reference))
        return sorted(rows)


def kept_inputs(harness: Harness) -> list[str]:
    return [blob.key for blob in harness.services.blobs.list(INPUT_AREA)]


async def test_a_job_transcribes_keeps_captions_and_is_charged_once(
    harness_factory: Callable[..., Any], receiver: Receiver
) -> None:
    harness: Harness = await harness_factory(webhooks={"allow_http": True, "allow_private_targets": True})
    caller = await harness.new_caller()
    await harness.client.post(
        "/api/open/v1/profile", headers=caller.headers, json={"webhookUrl": receiver.url()}
    )
    url = await stored_speech(harness, caller, SPOKEN)
    duration = decode_audio((await harness.client.get(url)).content).duration_seconds
    billed = math.ceil(duration)
    before = await harness.balance(caller.account_id)

    submitted = await harness.client.post(JOBS, headers=caller.headers, json={"audioUrl": url, "words": True})
    assert submitted.status_code == 202, submitted.text
    queued = submitted.json()
    assert (queued["status"], queued["progress"], queued["creditsUsed"]) == ("queued", 0, 0)
    assert (queued["transcript"], queued["captions"], queued["model"]) == (None, None, "whisper-base")
    assert abs(queued["durationSeconds"] - duration) < 0.01
    assert await harness.balance(caller.account_id) == before - billed  # held at submit

    job = await wait_for(harness, caller, queued["id"])
    assert job["status"] == "succeeded", job
    assert (job["progress"], job["creditsUsed"], job["attempt"], job["error"]) == (100, billed, 1, None)
    transcript = job["transcript"]
    assert word_error_rate(SPOKEN, transcript["text"]) < 0.35, transcript["text"]
    assert (transcript["language"], transcript["credits_used"]) == ("en", billed)
    assert all(segment["words"] for segment in transcript["segments"])
    for fmt, parse in (("srt", parse_srt), ("vtt", parse_vtt)):
        download = await harness.client.get(job["captions"][f"{fmt}Url"])  # signed: no token needed
        assert download.status_code == 200, download.text
        cues = parse(download.text)
        assert_timed_inside(cues, duration)
        assert word_error_rate(SPOKEN, " ".join(text for _start, _end, text in cues)) < 0.35
    assert await ledger(harness, f"job:{job['id']}") == ["capture", "hold"]
    assert await harness.balance(caller.account_id) == before - billed
    assert kept_inputs(harness) == []  # the upload is deleted once the job ended

    await asyncio.wait_for(receiver.arrived.wait(), 20)
    [request] = receiver.requests
    event = json.loads(request.body)
    assert event["type"] == "transcription.job.succeeded"
    assert (event["jobId"], event["creditsUsed"]) == (job["id"], billed)
    document = await harness.client.get(event["resultUrl"])
    assert document.headers["content-type"] == "application/json"
    assert document.json() == transcript
    tampered = job["captions"]["srtUrl"].replace(".srt?", ".vtt?")
    assert_v1_error(await harness.client.get(tampered), 403, "forbidden")

    listed = (await harness.client.get(JOBS, headers=caller.headers)).json()
    assert (listed["total"], listed["page"], listed["pageSize"], listed["totalPages"]) == (1, 1, 20, 1)
    [item] = listed["items"]
    assert "transcript" not in item
    assert (item["id"], item["status"], item["captions"] is not None) == (job["id"], "succeeded", True)


async def test_progress_follows_the_decoded_audio(
    engines: EngineRegistry, harness_factory: Callable[..., Any]
) -> None:
    inner = engines.transcriber("whisper-tiny-en")
    assert inner is not None
    engine = GatedEngine(inner)  # holds the decode after its first segment until the gate opens
    only = EngineRegistry()
    only.register_transcriber(engine)
    harness: Harness = await harness_factory(engines=only)
    caller = await harness.new_caller()
    audio = long_speech()
    submitted = await harness.client.post(
        JOBS,
        headers=caller.headers,
        files={"file": ("long.wav", audio, "audio/wav")},
        data={"model": "whisper-tiny-en", "language": "en"},
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    try:
        async with asyncio.timeout(60):
            while True:
                job = (await harness.client.get(f"{JOBS}/{job_id}", headers=caller.headers)).json()
                if job["progress"] > 0:
                    break
                await asyncio.sleep(0.1)
        # The first segment is decoded, the rest of the audio is not: progress is partway.
        first = engine.handed[0]
        assert job["status"] == "processing"
        assert 0 < job["progress"] < 100
        assert job["progress"] == int(first.end / decode_audio(audio).duration_seconds * 100)
    finally:
        engine.gate.set()
    done = await wait_for(harness, caller, job_id)
    assert (done["status"], done["progress"]) == ("succeeded", 100)
    assert word_error_rate(" ".join(LONG_SENTENCES), done["transcript"]["text"]) < 0.25


async def test_one_idempotency_key_queues_one_job_for_the_same_upload(
    harness_factory: Callable[..., Any],
) -> None:
    harness: Harness = await harness_factory(jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    clip = silence_wav(2.5)
    headers = {**caller.headers, "Idempotency-Key": "upload-1"}
    files, data = {"file": ("a.wav", clip, "audio/wav")}, {"language": "en"}
    # httpx picks a new multipart boundary for each request: the bodies differ, the request does not.
    first = await harness.client.post(JOBS, headers=headers, files=files, data=data)
    again = await harness.client.post(JOBS, headers=headers, files=files, data=data)
    assert first.status_code == again.status_code == 202, first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert await harness.balance(caller.account_id) == 1000 - 3
    other_clip = await harness.client.post(
        JOBS,
        headers=headers,
        files={"file": ("a.wav", silence_wav(3.5), "audio/wav")},
        data={"language": "en"},
    )
    assert_v1_error(other_clip, 409, "conflict")
    other_options = await harness.client.post(
        JOBS, headers=headers, files={"file": ("a.wav", clip, "audio/wav")}, data={"language": "de"}
    )
    assert_v1_error(other_options, 409, "conflict")
    assert (await harness.client.get(JOBS, headers=caller.headers)).json()["total"] == 1
    assert await harness.balance(caller.account_id) == 1000 - 3


async def test_a_queued_job_can_be_canceled_and_is_private(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(jobs={"embedded_worker": False})
    owner, other = await harness.new_caller(), await harness.new_caller()
    submitted = await harness.client.post(
        JOBS, headers=owner.headers, files={"file": ("a.wav", silence_wav(4.2), "audio/wav")}
    )
    job_id = submitted.json()["id"]
    assert await harness.balance(owner.account_id) == 1000 - 5
    assert len(kept_inputs(harness)) == 1
    for response in (
        await harness.client.get(f"{JOBS}/{job_id}", headers=other.headers),
        await harness.client.post(f"{JOBS}/{job_id}/cancel", headers=other.headers),
    ):
        assert_v1_error(response, 404, "not_found")
    assert (await harness.client.get(JOBS, headers=other.headers)).json()["total"] == 0

    canceled = await harness.client.post(f"{JOBS}/{job_id}/cancel", headers=owner.headers)
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["status"], canceled.json()["creditsUsed"]) == ("canceled", 0)
    assert await harness.balance(owner.account_id) == 1000
    assert await ledger(harness, f"job:{job_id}") == ["hold", "release"]
    assert kept_inputs(harness) == []
    assert_v1_error(
        await harness.client.post(f"{JOBS}/{job_id}/cancel", headers=owner.headers), 409, "conflict"
    )


async def test_bad_input_is_refused_at_submit_and_costs_nothing(harness_factory: Callable[..., Any]) -> None:
    harness: Harness = await harness_factory(asr={"max_seconds": 5}, jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    long_wav = encode_complete(np.full(22050 * 6, 0.01, dtype=np.float32), "wav", 22050)
    clip = ("a.wav", silence_wav(1.0), "audio/wav")
    no_file = b'--b\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n--b--\r\n'
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"content": no_file, "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
            400,
            "required",
        ),
        ({"files": {"other": clip}, "data": {"language": "en"}}, 400, "unknown field"),
        ({"files": {"file": ("x.txt", b"not audio at all", "text/plain")}}, 400, "decoded"),
        ({"files": {"file": ("long.wav", long_wav, "audio/wav")}}, 413, "longer than 5"),
        ({"files": {"file": clip}, "data": {"model": "whisper-huge"}}, 400, "model"),
        ({"json": {"audioUrl": "x", "model": "whisper-huge"}}, 400, "model"),
        ({"files": {"file": clip}, "data": {"language": "zz"}}, 400, "language"),
        ({"files": {"file": clip}, "data": {"response_format": "srt"}}, 400, "response_format"),
        ({"json": {"audioUrl": "https://example.com/a.wav"}}, 403, "external"),
        ({"json": {"audioUrl": "/api/open/v1/files/file_" + "0" * 32}}, 404, "file"),
        ({"json": {"audioUrl": "x", "extra": 1}}, 400, "extra"),
        ({"content": b"raw", "headers": {"Content-Type": "audio/wav"}}, 415, "multipart"),
    ]
    for request, status, words in cases:
        headers = {**caller.headers, **request.pop("headers", {})}
        response = await harness.client.post(JOBS, headers=headers, **request)
        assert response.status_code == status, (request, response.text)
        assert words.lower() in response.json()["message"].lower(), (request, response.text)
    poor = await harness.new_caller(credits=1)
    three_seconds = ("a.wav", silence_wav(3.0), "audio/wav")
    refused = await harness.client.post(JOBS, headers=poor.headers, files={"file": three_seconds})
    assert_v1_error(refused, 402, "insufficient_credits")
    assert await harness.balance(caller.account_id) == 1000
    assert await harness.balance(poor.account_id) == 1
    for account in (caller, poor):
        assert (await harness.client.get(JOBS, headers=account.headers)).json()["total"] == 0
    assert kept_inputs(harness) == []  # nothing kept for a job that was never queued


async def test_result_links_need_a_valid_signature(harness: Harness) -> None:
    name = "job_" + "0" * 32 + ".srt"
    base = "/api/open/v1/speech/transcriptions/results"
    assert_v1_error(await harness.client.get(f"{base}/{name}"), 403, "forbidden")
    assert_v1_error(await harness.client.get(f"{base}/openfish.db"), 404, "not_found")
    links = harness.services.transcription_jobs.caption_links({"json": "x", "srt": name, "vtt": name})
    assert_v1_error(await harness.client.get(links.srt), 404, "not_found")  # signed, but no such job

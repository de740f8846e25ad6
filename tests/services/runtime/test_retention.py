"""Stored results are deleted once past their retention; what is still in use stays."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from openfish.services.runtime.retention import sweep
from openfish.store.models import utcnow
from tests.conftest import Harness

DAY = 86_400


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def test_sweep_deletes_only_what_outlived_its_retention(harness: Harness) -> None:
    caller = await harness.new_caller()
    services = harness.services
    blobs, root = services.blobs, services.settings.data_dir / "blobs"
    # cache=true audio: made through the API, then aged past a day; a second one stays fresh.
    for text in ("Old audio.", "Fresh audio."):
        response = await harness.client.post(
            "/api/open/v1/speech/tts", headers=caller.headers, json={"text": text, "cache": True}
        )
        assert response.status_code == 200
    old, fresh = sorted((root / "tts").iterdir(), key=lambda p: p.stat().st_mtime)
    age(old, DAY + 60)
    blobs.put("jobs/job_" + "1" * 32 + "_22050.mp3", b"old job audio")
    age(root / "jobs" / ("job_" + "1" * 32 + "_22050.mp3"), 8 * DAY)
    blobs.put("jobs/job_" + "2" * 32 + "_22050.mp3", b"recent job audio")
    blobs.put("lipsync/job_" + "3" * 32 + ".mp4", b"old video")
    age(root / "lipsync" / ("job_" + "3" * 32 + ".mp4"), 8 * DAY)
    blobs.put("lipsync/job_" + "4" * 32 + "_video.bin", b"input of a job still queued")
    age(root / "lipsync" / ("job_" + "4" * 32 + "_video.bin"), 8 * DAY)
    scratch = services.settings.data_dir / "tmp" / "render-crashed"
    scratch.mkdir(parents=True)
    (scratch / "out.mp4").write_bytes(b"half")
    age(scratch, 2 * DAY)

    swept = sweep(blobs, services.settings, utcnow(), services.jobs.result_areas)

    assert (swept.stored_audio, swept.job_results, swept.scratch) == (1, 2, 1)
    assert not old.exists()
    assert fresh.exists()
    assert sorted(p.name for p in (root / "jobs").iterdir()) == ["job_" + "2" * 32 + "_22050.mp3"]
    assert sorted(p.name for p in (root / "lipsync").iterdir()) == ["job_" + "4" * 32 + "_video.bin"]
    assert not scratch.exists()


async def test_reusing_cached_audio_keeps_it(harness: Harness) -> None:
    caller = await harness.new_caller()
    body = {"text": "Used again and again.", "cache": True}
    first = await harness.client.post("/api/open/v1/speech/tts", headers=caller.headers, json=body)
    [stored] = (harness.services.settings.data_dir / "blobs" / "tts").iterdir()
    age(stored, DAY + 60)
    again = await harness.client.post("/api/open/v1/speech/tts", headers=caller.headers, json=body)
    assert again.json()["audio_url"].split("?")[0] == first.json()["audio_url"].split("?")[0]
    later = utcnow() + timedelta(seconds=60)
    sweep(harness.services.blobs, harness.services.settings, later, harness.services.jobs.result_areas)
    assert stored.exists()
    assert (await harness.client.get(again.json()["audio_url"])).status_code == 200


async def test_inputs_left_by_a_failed_clean_up_go_once_their_job_has_ended(
    harness_factory: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await harness_factory(jobs={"embedded_worker": False})
    caller = await harness.new_caller()
    services = harness.services
    root = services.settings.data_dir / "blobs" / "lipsync"
    ended, waiting, recent = ("job_" + letter * 32 for letter in "567")
    for job_id in (ended, waiting, recent):
        async with services.db.transaction() as session:
            await services.queue.enqueue(
                session,
                job_id=job_id,
                account_id=caller.account_id,
                kind="lipsync",
                payload={},
                credits=0,
                max_attempts=1,
            )
        services.blobs.put(f"lipsync/{job_id}_video.bin", b"kept input")
    for job_id in (ended, recent):
        async with services.db.transaction() as session:
            assert await services.queue.cancel(job_id, caller.account_id, session)
    age(root / f"{ended}_video.bin", 2 * DAY)
    age(root / f"{waiting}_video.bin", 2 * DAY)
    services.blobs.put("lipsync/" + "job_" + "8" * 32 + ".mp4", b"a result is not an input")
    age(root / ("job_" + "8" * 32 + ".mp4"), 2 * DAY)

    deleted = await services.jobs.sweep_inputs(services.blobs, services.pool, utcnow() - timedelta(days=1))

    assert deleted == 1
    assert sorted(path.name for path in root.iterdir()) == [
        f"{waiting}_video.bin",  # its job is still queued: it will need it
        f"{recent}_video.bin",  # ended, but not yet past the grace period
        "job_" + "8" * 32 + ".mp4",
    ]

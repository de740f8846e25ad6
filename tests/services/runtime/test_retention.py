"""Stored results are deleted once past their retention; what is still in use stays."""

from __future__ import annotations

import os
import time
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

    swept = sweep(blobs, services.settings, utcnow())

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
    sweep(harness.services.blobs, harness.services.settings, utcnow() + timedelta(seconds=60))
    assert stored.exists()
    assert (await harness.client.get(again.json()["audio_url"])).status_code == 200

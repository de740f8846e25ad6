"""Stored results do not pile up: the maintenance loop deletes what has outlived its retention.

``cache=true`` audio is content-addressed and reused by identical requests, so its age counts from
its last use (a reuse touches it); so does that of inline reference profiles. Job results (TTS
audio, lip-sync videos) count from when they were made (each job kind names where it keeps them);
after that their job still reads, but its result URL answers 404. Scratch space left by an
interrupted render is cleared too. (Kept job inputs are the job framework's:
``JobService.sweep_inputs``.)
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from openfish.config import Settings
from openfish.jobs.kinds import BlobArea
from openfish.services.tts.synthesis import STORED_AREA
from openfish.services.voices.conversion import REFERENCE_AREA
from openfish.store.blobs import BlobStore


@dataclass(frozen=True)
class Swept:
    """What one sweep deleted."""

    stored_audio: int
    job_results: int
    scratch: int


def sweep(blobs: BlobStore, settings: Settings, now: datetime, job_results: Sequence[BlobArea]) -> Swept:
    """Delete everything past its retention (blocking: run it in the worker pool); ``job_results``
    are where the job kinds keep their results."""
    keep = settings.retention
    unused_since = now - timedelta(seconds=keep.stored_audio_seconds)
    # Inline reference profiles are kept like cache=true audio: a day after their last use.
    stored = sum(
        _delete_unused(blobs, BlobArea(area), unused_since) for area in (STORED_AREA, REFERENCE_AREA)
    )
    results_since = now - timedelta(seconds=keep.job_results_seconds)
    results = sum(_delete_unused(blobs, area, results_since) for area in job_results)
    scratch_since = now - timedelta(seconds=keep.scratch_seconds)
    scratch = _clear_scratch(settings.scratch_dir, scratch_since) + blobs.discard_incomplete(scratch_since)
    return Swept(stored, results, scratch)


def _delete_unused(blobs: BlobStore, area: BlobArea, unused_since: datetime) -> int:
    """Delete the blobs of ``area`` not written or touched since then."""
    old = [blob.key for blob in blobs.list(area.area) if blob.modified < unused_since]
    old = [key for key in old if key.endswith(area.suffix)]
    for key in old:
        blobs.delete(key)
    return len(old)


def _clear_scratch(folder: Path, unused_since: datetime) -> int:
    cleared = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if entry.stat().st_mtime < unused_since.timestamp():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            cleared += 1
    return cleared

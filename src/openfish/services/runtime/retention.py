"""Stored results do not pile up: the maintenance loop deletes what has outlived its retention.

``cache=true`` audio is content-addressed and reused by identical requests, so its age counts from
its last use (a reuse touches it). Job results (TTS audio, lip-sync videos) count from when they were
made; after that their job still reads, but its result URL answers 404. Scratch space left by an
interrupted render is cleared too.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from openfish.config import Settings
from openfish.services.media.lipsync import AREA as LIPSYNC_AREA
from openfish.services.tts.synthesis import JOB_AREA, STORED_AREA
from openfish.store.blobs import BlobStore


@dataclass(frozen=True)
class Swept:
    """What one sweep deleted."""

    stored_audio: int
    job_results: int
    scratch: int


def sweep(blobs: BlobStore, settings: Settings, now: datetime) -> Swept:
    """Delete everything past its retention (blocking: run it in the worker pool)."""
    keep = settings.retention
    stored = _delete_unused(blobs, STORED_AREA, now - timedelta(seconds=keep.stored_audio_seconds))
    results_since = now - timedelta(seconds=keep.job_results_seconds)
    # Lip-sync inputs (".bin") live as long as their job and are deleted when it ends.
    results = _delete_unused(blobs, JOB_AREA, results_since) + _delete_unused(
        blobs, LIPSYNC_AREA, results_since, ".mp4"
    )
    scratch_since = now - timedelta(seconds=keep.scratch_seconds)
    scratch = _clear_scratch(settings.scratch_dir, scratch_since) + blobs.discard_incomplete(scratch_since)
    return Swept(stored, results, scratch)


def _delete_unused(blobs: BlobStore, area: str, unused_since: datetime, suffix: str = "") -> int:
    """Delete the blobs of ``area`` (ending in ``suffix``) not written or touched since then."""
    old = [blob.key for blob in blobs.list(area) if blob.modified < unused_since]
    old = [key for key in old if key.endswith(suffix)]
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

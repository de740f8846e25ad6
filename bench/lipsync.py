"""Lip-sync speed and audio-mouth sync of the ``mouth-warp`` engine, on made media.

Run: ``.venv/bin/python -m bench.lipsync``.

For 480p (854x480) and 720p (1280x720) at 25 fps: a video of a gently moving face (scikit-image's
astronaut) and Piper speech with pauses, rendered by the engine as the lip-sync job runs it. Prints
frames per second of the whole render (decode, face mesh, warp, H.264 + AAC encode) and its ratio to
real time, then — measured on the output with the face mesh — the Pearson correlation of mouth
opening with loudness at its best lag (-3..3 frames) and that lag, next to the same measure on the
input video (which does not follow the audio: the control).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tests.lipsync_checks import best_lag, envelope, mouth_openings
from tests.media_clips import face_video, speech

from openfish.engines.lipsync import MouthWarpEngine

FPS = 25
SECONDS = 12.0
SIZES = {"480p": (854, 480), "720p": (1280, 720)}


def main() -> None:
    engine = MouthWarpEngine()
    engine.load()
    audio, rate = speech(SECONDS)
    print(f"mouth-warp, {SECONDS:g} s of Piper speech with pauses, {FPS} fps, best of 2 runs")
    print(f"{'size':6} {'frames':>6} {'render':>8} {'fps':>7} {'x real time':>11}   sync r (lag)   input r")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, size in SIZES.items():
            video = face_video(folder / f"{label}.mp4", SECONDS, fps=FPS, size=size)
            output = folder / f"{label}-synced.mp4"
            engine.sync(video, audio[: rate // 2], rate, folder / "warm.mp4", progress=lambda _: None)
            best = float("inf")
            for _ in range(2):
                started = time.perf_counter()
                report = engine.sync(video, audio, rate, output, progress=lambda _: None)
                best = min(best, time.perf_counter() - started)
            openings = mouth_openings(output)
            loudness = envelope(audio, rate, len(openings), FPS)
            score, lag = best_lag(openings, loudness)
            control, _ = best_lag(mouth_openings(video)[: len(openings)], loudness)
            fps = report.frames / best
            print(
                f"{label:6} {report.frames:6d} {best:7.2f}s {fps:7.1f} {fps / FPS:10.2f}x"
                f"   {score:5.2f} ({lag:+d})     {control:5.2f}"
            )


if __name__ == "__main__":
    main()

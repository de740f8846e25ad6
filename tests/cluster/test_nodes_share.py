"""What one node makes, the other serves: limits, stored audio, voices, lip-sync inputs."""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import av
import pytest

from openfish.audio.decode import decode_audio
from openfish.services.tts.synthesis import STORED_AREA
from tests.api.test_voices import reference_files
from tests.audio_checks import mean_f0
from tests.cluster.deployment import (
    ACCOUNTS,
    LIPSYNC,
    TTS,
    VOICES,
    Deployment,
    assert_balance,
    behind_balancer,
    fetched_through,
    until,
)
from tests.media_clips import face_video
from tests.processes import API, auth, kinds_for

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------------
# 2. A tier's rate limit counts on both nodes together
# ------------------------------------------------------------------------------------------------


def test_a_free_accounts_rate_limit_holds_across_both_nodes(deployment: Deployment) -> None:
    _account_id, token = deployment.accounts["limits"]
    per_minute = 30  # the free tier's requests_per_minute (config/settings.py)
    with deployment.procs.showing_logs(), deployment.clients() as clients:
        answers = [clients[index % 2].get(f"{API}/profile", headers=auth(token)) for index in range(40)]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * per_minute + [429] * (40 - per_minute), statuses
    # Each node admitted half: neither counted only its own requests.
    assert [statuses[node::2].count(200) for node in (0, 1)] == [per_minute // 2] * 2
    for answer in answers[per_minute:]:
        assert answer.json()["code"] == "rate_limited"
        assert "per minute" in answer.json()["message"]
        assert 1 <= int(answer.headers["Retry-After"]) <= 60, answer.headers


# ------------------------------------------------------------------------------------------------
# 3. Stored audio made on one node downloads from the other
# ------------------------------------------------------------------------------------------------

STORED_TEXT = "Stored on one node, fetched from the other."


def test_stored_audio_made_on_one_node_downloads_from_the_other(deployment: Deployment) -> None:
    _account_id, token = deployment.accounts["stored"]
    body = {"text": STORED_TEXT, "cache": True, "format": "wav"}
    with deployment.procs.showing_logs(), deployment.clients() as clients:
        made = clients[0].post(TTS, headers=auth(token), json=body)
        assert made.status_code == 200, made.text
        url = made.json()["audio_url"]
        downloads = [fetched_through(client, behind_balancer(url)) for client in clients]
        assert downloads[0].content == downloads[1].content
        audio = decode_audio(downloads[1].content)
        assert audio.sample_rate == 22050
        assert 1.5 < audio.duration_seconds < 6, audio.duration_seconds

        # The same request on the other node finds the same stored audio (a content address).
        again = clients[1].post(TTS, headers=auth(token), json=body)
        assert again.status_code == 200, again.text
        assert urlsplit(again.json()["audio_url"]).path == urlsplit(url).path
        # Both nodes sign with the one key in the database: a forged signature fails on either.
        forged = behind_balancer(url).replace("sig=", "sig=A")
        assert clients[1].get(forged).status_code == 403
        assert_balance(deployment, clients, "stored", ACCOUNTS["stored"][1] - 2 * len(STORED_TEXT))
    # Kept once, in the bucket.
    stored = [PurePosixPath(blob.key).name for blob in deployment.blobs().list(STORED_AREA)]
    assert stored.count(PurePosixPath(urlsplit(url).path).name) == 1, stored


# ------------------------------------------------------------------------------------------------
# 4. A voice made through one node speaks on the other
# ------------------------------------------------------------------------------------------------

VOICE_TEXT = "Every morning the baker opens his shop before sunrise."


def test_a_voice_created_on_one_node_speaks_on_the_other(deployment: Deployment) -> None:
    database = deployment.database
    _account_id, token = deployment.accounts["voice"]
    with deployment.procs.showing_logs(), deployment.clients() as clients:
        created = clients[0].post(
            VOICES, headers=auth(token), data={"name": "Narrator"}, files=reference_files()
        )
        assert created.status_code == 201, created.text
        voice_id = created.json()["id"]
        assert created.json()["status"] == "processing"

        def analysed() -> dict[str, Any] | None:
            voice: dict[str, Any] = clients[1].get(f"{VOICES}/{voice_id}", headers=auth(token)).json()
            return None if voice["status"] == "processing" else voice

        voice = until(analysed, 120, "the voice's analysis")
        assert voice["status"] == "ready", voice

        rendered = {}
        for reference in ("en_US-joe-medium", voice_id):
            spoken = clients[1].post(
                TTS,
                headers=auth(token),
                json={"text": VOICE_TEXT, "reference_id": reference, "format": "wav"},
            )
            assert spoken.status_code == 200, spoken.text
            rendered[reference] = decode_audio(spoken.content)
        base, made = rendered["en_US-joe-medium"], rendered[voice_id]
        assert 2 < made.duration_seconds < 8, made.duration_seconds
        # The profile the worker wrote to the bucket is what node 2 converts with: the made voice is
        # the high reference speaker's, not the base voice's.
        assert mean_f0(made.samples, made.sample_rate) > 1.3 * mean_f0(base.samples, base.sample_rate)

        assert kinds_for(database, f"voice:{voice_id}") == {"hold": 1, "capture": 1}
        price = 100  # voices.creation_credits
        assert_balance(deployment, clients, "voice", ACCOUNTS["voice"][1] - price - 2 * len(VOICE_TEXT))


# ------------------------------------------------------------------------------------------------
# 5. A lip-sync job submitted on one node, with inputs made on the other
# ------------------------------------------------------------------------------------------------

LIPSYNC_TEXT = "Hello there. I am talking now, and then I stop."


def test_a_lipsync_job_submitted_on_the_second_node_completes(deployment: Deployment, tmp_path: Path) -> None:
    database = deployment.database
    _account_id, token = deployment.accounts["lipsync"]
    video = face_video(tmp_path / "face.mp4", 2.0, fps=25, size=(320, 240)).read_bytes()
    with deployment.procs.showing_logs(), deployment.clients() as clients:
        uploaded = clients[0].post(f"{API}/files", headers=auth(token), files={"file": ("face.mp4", video)})
        assert uploaded.status_code == 201, uploaded.text
        spoken = clients[0].post(
            TTS, headers=auth(token), json={"text": LIPSYNC_TEXT, "format": "wav", "cache": True}
        )
        assert spoken.status_code == 200, spoken.text
        audio_url = spoken.json()["audio_url"]
        speech = decode_audio(fetched_through(clients[0], behind_balancer(audio_url)).content)
        credits = math.ceil(speech.duration_seconds) * 2  # lipsync.credits_per_second

        submitted = clients[1].post(
            LIPSYNC, headers=auth(token), json={"videoUrl": uploaded.json()["url"], "audioUrl": audio_url}
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["data"]["id"]

        def ended() -> dict[str, Any] | None:
            job: dict[str, Any] = clients[0].get(f"{LIPSYNC}/{job_id}", headers=auth(token)).json()["data"]
            return job if job["status"] in ("completed", "failed") else None

        job = until(ended, 180, "the lip-sync job", interval=0.25)
        assert job["status"] == "completed", job
        assert job["credits_used"] == credits
        result = fetched_through(clients[1], behind_balancer(job["result_url"]))
        out = tmp_path / "out.mp4"
        out.write_bytes(result.content)
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.width) == ("h264", 320)
            assert container.streams.audio[0].codec_context.name == "aac"
            duration = float(container.duration or 0) / av.time_base
        assert duration == pytest.approx(speech.duration_seconds, abs=0.15)

        assert kinds_for(database, f"job:{job_id}") == {"hold": 1, "capture": 1}
        assert_balance(deployment, clients, "lipsync", ACCOUNTS["lipsync"][1] - len(LIPSYNC_TEXT) - credits)

"""Voice conversion with the WORLD vocoder (``pyworld``): no neural weights, a few ms per second of audio.

A profile is what one speaker's clips say about their voice, from voiced frames only: the mean and
spread of log-F0, the mean log spectral envelope, and a pool of coded (mel-cepstral) envelopes.
Converting audio of a ``source`` speaker toward a ``target`` then takes, per chunk:

1. F0: log-F0 mean and standard deviation matching (voiced frames).
2. Vocal-tract length: the spectral envelope is warped along frequency by the factor (0.8-1.4) that
   best aligns the source's mean envelope with the target's between 100 Hz and 5 kHz (after removing
   each difference's linear tilt, which the equaliser takes care of).
3. Timbre: the remaining mean-envelope difference, smoothed and limited to +/-24 dB, as an equaliser.
4. Detail: each voiced frame moves ``knn_blend`` of the way toward the mean of its ``knn_k`` nearest
   frames in the target's pool (kNN in coded-envelope space, frame energy kept), which brings in the
   target's own formant shapes; at 0.5 the converted frames stay closest to their own source frames.

Profiles are ``np.savez`` archives (no pickle) with a kind and version. The converter's native rate is
22050 Hz (Piper's); ``analyse`` and ``convert`` take any rate and resample to it and back.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyworld as pw

from openfish.audio.resample import resample_exact
from openfish.engines.base import Audio

F64 = npt.NDArray[np.float64]

PROFILE_KIND = "openfish-world-profile"
PROFILE_VERSION = 1
SAMPLE_RATE = 22050
FRAME_PERIOD_MS = 5.0
FFT_SIZE = 1024
CODED_DIMS = 40
F0_FLOOR, F0_CEIL = 60.0, 600.0
WARP_RANGE = (0.8, 1.4)
WARP_BAND_HZ = (100.0, 5000.0)
EQ_LIMIT_DB = 24.0
EQ_SMOOTH_BINS = 8
MIN_VOICED_FRAMES = 40
MAX_POOL_FRAMES = 3000
_BINS = FFT_SIZE // 2 + 1


@dataclass(frozen=True)
class Profile:
    """One speaker's voice statistics (see the module docstring)."""

    log_f0_mean: float
    log_f0_std: float
    envelope: F64  # mean natural-log spectral envelope of voiced frames, (FFT_SIZE // 2 + 1,)
    pool: F64  # coded envelopes of voiced frames, (n, CODED_DIMS)


@dataclass(frozen=True)
class _Plan:
    """How to turn one source into one target, worked out once per pair of profiles."""

    warp: float
    eq: F64
    f0_scale: float
    f0_shift: float
    pool: F64
    pool_sq: F64


def _world(x: F64) -> tuple[F64, F64, F64]:
    """F0 (DIO + StoneMask), spectral envelope (CheapTrick) and aperiodicity (D4C) at 22050 Hz."""
    f0, times = pw.dio(x, SAMPLE_RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = pw.stonemask(x, f0, times, SAMPLE_RATE)
    sp = pw.cheaptrick(x, f0, times, SAMPLE_RATE, fft_size=FFT_SIZE)
    ap = pw.d4c(x, f0, times, SAMPLE_RATE, fft_size=FFT_SIZE)
    return f0, sp, ap


def warp_envelope(log_env: F64, factor: float) -> F64:
    """``log_env`` with every feature moved from f to ``factor``·f (edge value past the source's end)."""
    position = np.clip(np.arange(log_env.shape[-1]) / factor, 0, log_env.shape[-1] - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, log_env.shape[-1] - 1)
    weight = position - low
    result: F64 = log_env[..., low] * (1 - weight) + log_env[..., high] * weight
    return result


def _smooth(values: F64, half_width: int) -> F64:
    kernel = np.hanning(2 * half_width + 3)[1:-1]
    padded = np.pad(values, half_width, mode="edge")
    return np.convolve(padded, kernel / kernel.sum(), mode="valid")


def estimate_warp(source: Profile, target: Profile) -> float:
    """The factor whose warp of the source's mean envelope best matches the target's (tilt removed)."""
    low, high = (round(hz * FFT_SIZE / SAMPLE_RATE) for hz in WARP_BAND_HZ)
    factors = np.round(np.arange(WARP_RANGE[0], WARP_RANGE[1] + 1e-9, 0.005), 3)
    warped = np.stack([warp_envelope(source.envelope, float(f)) for f in factors])[:, low:high]
    diff = warped - target.envelope[low:high]
    design = np.stack([np.ones(high - low), np.linspace(-1, 1, high - low)], axis=1)
    residual = diff - (diff @ np.linalg.pinv(design).T) @ design.T
    return float(factors[np.argmin(np.mean(residual**2, axis=1))])


def encode_profile(profile: Profile) -> bytes:
    """The profile as an ``.npz`` archive (plain arrays only, readable without pickle)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        kind=np.array(PROFILE_KIND),
        version=np.array(PROFILE_VERSION),
        settings=np.array([SAMPLE_RATE, FFT_SIZE, CODED_DIMS]),
        f0=np.array([profile.log_f0_mean, profile.log_f0_std]),
        envelope=profile.envelope.astype(np.float32),
        pool=profile.pool.astype(np.float16),
    )
    return buffer.getvalue()


def decode_profile(data: bytes) -> Profile:
    """A profile from :func:`encode_profile`'s bytes; ValueError for anything else."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            kind, version = str(archive["kind"]), int(archive["version"])
            settings = [int(v) for v in archive["settings"]]
            f0 = archive["f0"].astype(np.float64)
            envelope = archive["envelope"].astype(np.float64)
            pool = archive["pool"].astype(np.float64)
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError("not a WORLD voice profile") from exc
    if kind != PROFILE_KIND or version != PROFILE_VERSION:
        raise ValueError(f"unsupported voice profile ({kind!r} version {version})")
    shapes_ok = f0.shape == (2,) and envelope.shape == (_BINS,) and pool.ndim == 2
    if settings != [SAMPLE_RATE, FFT_SIZE, CODED_DIMS] or not shapes_ok or pool.shape[1] != CODED_DIMS:
        raise ValueError("voice profile was made with other settings")
    if not (np.isfinite(f0).all() and np.isfinite(envelope).all() and np.isfinite(pool).all()):
        raise ValueError("voice profile holds non-finite values")
    return Profile(float(f0[0]), max(float(f0[1]), 1e-3), envelope, pool)


class WorldConverter:
    """Converts speech chunk by chunk toward a profiled speaker; safe to share between threads."""

    name = "world"
    sample_rate = SAMPLE_RATE

    def __init__(self, knn_blend: float = 0.5, knn_k: int = 8, cache_size: int = 64) -> None:
        if not 0.0 <= knn_blend <= 1.0 or knn_k < 1 or cache_size < 1:
            raise ValueError("knn_blend must be in [0, 1]; knn_k and cache_size at least 1")
        self._blend = knn_blend
        self._k = knn_k
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._profiles: OrderedDict[bytes, Profile] = OrderedDict()
        self._plans: OrderedDict[tuple[bytes, bytes], _Plan] = OrderedDict()

    def analyse(self, clips: list[Audio], sample_rate: int) -> bytes:
        """A profile from clips of one speaker (any rate; silence and unvoiced frames are skipped)."""
        log_f0: list[F64] = []
        envelopes: list[F64] = []
        for clip in clips:
            x = resample_exact(np.nan_to_num(np.asarray(clip, dtype=np.float32)), sample_rate, SAMPLE_RATE)
            if x.size < FFT_SIZE:
                continue
            f0, sp, _ = _world(x.astype(np.float64))
            voiced = f0 > 0
            log_f0.append(np.log(f0[voiced]))
            envelopes.append(sp[voiced])
        frames = np.concatenate(envelopes) if envelopes else np.zeros((0, _BINS))
        if frames.shape[0] < MIN_VOICED_FRAMES:
            raise ValueError("the clips hold too little voiced speech to profile a voice")
        pitches = np.concatenate(log_f0)
        pool = pw.code_spectral_envelope(np.ascontiguousarray(frames), SAMPLE_RATE, CODED_DIMS)
        if pool.shape[0] > MAX_POOL_FRAMES:
            pool = pool[np.linspace(0, pool.shape[0] - 1, MAX_POOL_FRAMES).astype(np.int64)]
        profile = Profile(float(pitches.mean()), float(pitches.std()), np.log(frames).mean(axis=0), pool)
        return encode_profile(profile)

    def warp_factor(self, source: bytes, target: bytes) -> float:
        """The formant warp factor ``convert`` applies for this pair of profiles."""
        return self._plan(source, target).warp

    def convert(self, audio: Audio, sample_rate: int, source: bytes, target: bytes) -> Audio:
        """``audio`` of ``source``, made to sound like ``target``: same rate, length and loudness."""
        plan = self._plan(source, target)
        x = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1))
        native = resample_exact(x, sample_rate, SAMPLE_RATE).astype(np.float64)
        if native.size < FFT_SIZE or np.max(np.abs(native)) < 1e-4:
            return x.copy()
        y = self._convert_native(native, plan)
        y *= np.sqrt(np.mean(native**2) / (np.mean(y**2) + 1e-12))
        out = resample_exact(y.astype(np.float32), SAMPLE_RATE, sample_rate)
        out = np.pad(out[: x.size], (0, max(0, x.size - out.size)))
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _convert_native(self, x: F64, plan: _Plan) -> F64:
        f0, sp, ap = _world(x)
        log_sp = warp_envelope(np.log(sp), plan.warp) + plan.eq
        voiced = f0 > 0
        if voiced.any():
            pitch = np.exp(np.log(f0[voiced]) * plan.f0_scale + plan.f0_shift)
            f0[voiced] = np.clip(pitch, F0_FLOOR, F0_CEIL)
            if self._blend > 0:
                log_sp[voiced] += self._towards_pool(np.exp(log_sp[voiced]), plan)
        y = pw.synthesize(f0, np.ascontiguousarray(np.exp(log_sp)), ap, SAMPLE_RATE, FRAME_PERIOD_MS)
        return np.pad(y[: x.size], (0, max(0, x.size - y.size)))

    def _towards_pool(self, frames: F64, plan: _Plan) -> F64:
        """Log-envelope change moving each frame toward the mean of its nearest target frames."""
        query = pw.code_spectral_envelope(np.ascontiguousarray(frames), SAMPLE_RATE, CODED_DIMS)
        shape = query[:, 1:]  # coefficient 0 is the frame's level, which stays
        distance = plan.pool_sq[None, :] - 2.0 * shape @ plan.pool[:, 1:].T
        k = min(self._k, plan.pool.shape[0])
        nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
        change = np.zeros_like(query)
        change[:, 1:] = self._blend * (plan.pool[nearest, 1:].mean(axis=1) - shape)
        moved = pw.decode_spectral_envelope(np.ascontiguousarray(query + change), SAMPLE_RATE, FFT_SIZE)
        kept = pw.decode_spectral_envelope(np.ascontiguousarray(query), SAMPLE_RATE, FFT_SIZE)
        delta: F64 = np.log(moved) - np.log(kept)
        return delta

    def _profile(self, data: bytes) -> tuple[bytes, Profile]:
        key = hashlib.sha256(data).digest()
        with self._lock:
            cached = self._profiles.get(key)
            if cached is not None:
                self._profiles.move_to_end(key)
                return key, cached
        profile = decode_profile(data)
        with self._lock:
            self._profiles[key] = profile
            while len(self._profiles) > self._cache_size:
                self._profiles.popitem(last=False)
        return key, profile

    def _plan(self, source: bytes, target: bytes) -> _Plan:
        source_key, source_profile = self._profile(source)
        target_key, target_profile = self._profile(target)
        key = (source_key, target_key)
        with self._lock:
            cached = self._plans.get(key)
            if cached is not None:
                self._plans.move_to_end(key)
                return cached
        plan = _make_plan(source_profile, target_profile)
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > self._cache_size:
                self._plans.popitem(last=False)
        return plan


def _make_plan(source: Profile, target: Profile) -> _Plan:
    warp = estimate_warp(source, target)
    limit = EQ_LIMIT_DB / 20 * np.log(10)
    difference = target.envelope - warp_envelope(source.envelope, warp)
    low, high = (round(hz * FFT_SIZE / SAMPLE_RATE) for hz in WARP_BAND_HZ)
    difference -= difference[low:high].mean()  # recording levels differ; convert restores the input's
    eq = np.clip(_smooth(difference, EQ_SMOOTH_BINS), -limit, limit)
    scale = float(np.clip(target.log_f0_std / source.log_f0_std, 0.25, 4.0))
    shift = target.log_f0_mean - scale * source.log_f0_mean
    return _Plan(warp, eq, scale, shift, target.pool, np.sum(target.pool[:, 1:] ** 2, axis=1))

"""Emotion as prosody: each emotion moves pitch level, speaking rate and energy.

Pitch and rate are applied to the engine's audio (``audio.effects.TempoPitch``) and energy as
output gain, so every engine honours them alike. Pitch range is not varied: that would need
resynthesis, which no engine here offers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prosody:
    """Offsets an emotion applies on top of the request's own speed and volume."""

    pitch_semitones: float = 0.0
    speed: float = 1.0
    energy_db: float = 0.0


EMOTIONS: dict[str, Prosody] = {
    "happy": Prosody(pitch_semitones=2.5, speed=1.08, energy_db=2.0),
    "surprised": Prosody(pitch_semitones=3.5, speed=1.05, energy_db=3.0),
    "angry": Prosody(pitch_semitones=1.0, speed=1.10, energy_db=4.0),
    "fearful": Prosody(pitch_semitones=2.0, speed=1.12, energy_db=-1.0),
    "sad": Prosody(pitch_semitones=-2.0, speed=0.88, energy_db=-3.0),
    "disgusted": Prosody(pitch_semitones=-1.0, speed=0.92, energy_db=1.0),
    "calm": Prosody(pitch_semitones=-1.0, speed=0.92, energy_db=-2.0),
    "fluent": Prosody(pitch_semitones=0.0, speed=1.05, energy_db=0.0),
}

"""Heart beat and breathing: how the coronaries move during a cine.

Cardiac motion acts in 3D on the ellipsoid's own axes, so every projection sees the same
physical movement: in systole the ventricles narrow toward the long axis, the base descends
toward a nearly fixed apex and the base twists against the apex; in diastole it relaxes. Each
point moves along its own end-systolic displacement, scaled by the contraction level (0..1):
a first-order model of the deformation (the twist, at most ~10 degrees, becomes a tangential
shift), which keeps a whole cine's motion one outer product. Breathing (mostly held in the cath
lab, but patients drift) translates heart and diaphragm together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from angioscribe.sim.anatomy3d import Heart

SYSTOLE_FRACTION = 0.35  # of the cardiac cycle, from end-diastole to end-systole
RELAXATION_END = 0.75  # rapid filling ends here; diastasis follows


def contraction(phase: np.ndarray) -> np.ndarray:
    """0 at end-diastole, 1 at end-systole: raised-cosine contraction and relaxation."""
    phase = np.mod(phase, 1.0)
    rising = 0.5 - 0.5 * np.cos(np.pi * np.clip(phase / SYSTOLE_FRACTION, 0, 1))
    falling = 0.5 + 0.5 * np.cos(
        np.pi * np.clip((phase - SYSTOLE_FRACTION) / (RELAXATION_END - SYSTOLE_FRACTION), 0, 1))
    relaxing = np.where(phase < RELAXATION_END, falling, 0.0)
    return np.where(phase < SYSTOLE_FRACTION, rising, relaxing)


@dataclass(frozen=True)
class CardiacMotion:
    """One patient's beat: rate, where the cine starts in the cycle and how far walls move."""

    heart_rate_bpm: float
    start_phase: float
    radial_shortening: float  # fraction of the distance to the long axis lost in systole
    longitudinal_shortening: float  # fraction of the distance to the apex lost in systole
    twist_deg: float  # rotation of the base relative to the apex at end-systole
    swing_mm: np.ndarray  # whole-heart displacement at end-systole

    def phase(self, t: np.ndarray | float) -> np.ndarray:
        return np.mod(self.start_phase + np.asarray(t) * self.heart_rate_bpm / 60.0, 1.0)

    def contraction(self, t: np.ndarray | float) -> np.ndarray:
        return contraction(self.phase(t))

    def systolic_shift(self, heart: Heart, points: np.ndarray) -> np.ndarray:
        """How far each point at rest (end-diastole, (N, 3)) moves by end-systole, (N, 3)."""
        rel = points - heart.centre
        along = rel @ heart.long_axis
        radial = rel - along[:, None] * heart.long_axis
        to_apex = heart.half_length_mm - along
        descent = self.longitudinal_shortening * to_apex
        base_weight = np.clip(to_apex / (2 * heart.half_length_mm), 0.0, 1.0)
        twist = np.radians(self.twist_deg) * base_weight
        return (descent[:, None] * heart.long_axis - self.radial_shortening * radial
                + twist[:, None] * np.cross(heart.long_axis, radial) + self.swing_mm)


@dataclass(frozen=True)
class Breathing:
    """Slow translation of heart and diaphragm: a residual breath plus drift (mm, mm/s)."""

    amplitude_mm: float
    period_s: float
    phase: float
    drift_mm_s: np.ndarray

    def offset(self, times: np.ndarray) -> np.ndarray:
        """Displacement (T, 3) at each time; the breath moves mostly along the body axis."""
        times = np.asarray(times, dtype=float)
        breath = self.amplitude_mm * np.sin(2 * np.pi * (times / self.period_s + self.phase))
        return np.stack([np.zeros_like(breath), 0.3 * breath, breath], axis=-1) + (
            times[..., None] * self.drift_mm_s)


def sample_cardiac_motion(rng: np.random.Generator) -> CardiacMotion:
    return CardiacMotion(
        heart_rate_bpm=float(rng.uniform(55, 95)),
        start_phase=float(rng.uniform(0, 1)),
        radial_shortening=float(rng.uniform(0.08, 0.14)),
        longitudinal_shortening=float(rng.uniform(0.08, 0.14)),
        twist_deg=float(rng.uniform(4, 10)),
        swing_mm=rng.normal(0, 2.0, size=3),
    )


def sample_breathing(rng: np.random.Generator) -> Breathing:
    return Breathing(
        amplitude_mm=float(rng.uniform(0, 3)),
        period_s=float(rng.uniform(3, 5)),
        phase=float(rng.uniform(0, 1)),
        drift_mm_s=rng.normal(0, 0.6, size=3),
    )

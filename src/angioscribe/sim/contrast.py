"""Contrast injection: when each point of the tree fills and washes out.

A hand or power injection fills the catheter and pushes a contrast front down the tree. A
point at path length L from the ostium starts to fill at start + L / speed (+ any delay from a
tight lesion upstream), reaches full concentration after `rise_s`, stays full while the
injection lasts, and washes out exponentially after its end (the washout also travels down
the tree). Beyond an occlusion there is no antegrade filling; collaterals fill that bed late
and faintly. Concentration is 0..1 of the injected contrast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLLATERAL_PEAK = 0.3  # collateral filling stays below the mask threshold: faint by design
COLLATERAL_LAG_S = 0.8
COLLATERAL_RISE_S = 0.8


@dataclass(frozen=True)
class Injection:
    start_s: float
    length_s: float
    front_speed_mm_s: float
    rise_s: float
    washout_s: float

    def fill(self, t: float, path_mm: np.ndarray, delay_s: np.ndarray, antegrade: np.ndarray,
             collateral: np.ndarray) -> np.ndarray:
        """Concentration at time t of samples with these path lengths and flow conditions."""
        arrival = self.start_s + path_mm / self.front_speed_mm_s + delay_s
        forward = self._bolus(t, arrival, self.rise_s)
        late = COLLATERAL_PEAK * self._bolus(t, arrival + COLLATERAL_LAG_S, COLLATERAL_RISE_S)
        return np.where(antegrade, forward, np.where(collateral, late, 0.0))

    def _bolus(self, t: float, arrival: np.ndarray, rise_s: float) -> np.ndarray:
        ramp = np.clip((t - arrival) / rise_s, 0.0, 1.0)
        inflow = ramp * ramp * (3.0 - 2.0 * ramp)
        since_end = np.clip(t - (arrival + self.length_s), 0.0, None)
        return inflow * np.exp(-since_end / self.washout_s)


def sample_injection(rng: np.random.Generator, longest_path_mm: float) -> Injection:
    """An injection long enough to fill the whole tree for a moment, as operators aim for."""
    speed = float(rng.uniform(180, 400))
    rise = float(rng.uniform(0.12, 0.3))
    fill_time = longest_path_mm / speed + rise
    return Injection(
        start_s=float(rng.uniform(0.15, 0.6)),
        length_s=fill_time + float(rng.uniform(0.5, 1.3)),
        front_speed_mm_s=speed,
        rise_s=rise,
        washout_s=float(rng.uniform(0.25, 0.55)),
    )


def cine_duration_s(rng: np.random.Generator, injection: Injection) -> float:
    """Recording runs past the washout of the ostium; 2-5 s as in routine practice."""
    end = injection.start_s + injection.length_s + rng.uniform(0.3, 1.2)
    return float(np.clip(end, 2.0, 5.0))

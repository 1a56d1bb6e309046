"""Candidate frames of a cine: CAG-VLM's rule, vectorised over a (T, H, W) array.

CAG-VLM took the frames at local extrema of the per-frame pixel-intensity mean and variance,
at least 5 frames apart, as the still frames a cardiologist would pick from. Extrema of the
mean catch the darkest (most opacified) and brightest (contrast-free) moments; extrema of the
variance catch the most and least structured ones. The key-frame classifier then decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_GAP = 5
DETAIL_SIZE = 256
DETAIL_SIGMA = 2.0
# Frames per block for per-frame statistics: float work arrays stay a few MB whatever the
# cine's length, so a 2,000-frame cine costs no more than its own 8-bit copy.
BLOCK_FRAMES = 32


@dataclass(frozen=True)
class Candidate:
    """A candidate frame: why it was picked and how opacified it looks.

    `opacification` is the frame's dark-detail contrast (see `opacification`), in grey levels;
    higher means more contrast-filled vessels. It ranks candidates before any model has run.
    """

    index: int
    kinds: tuple[str, ...]
    mean: float
    variance: float
    opacification: float


def frame_statistics(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame intensity mean and variance of a (T, H, W) array, in float64."""
    if frames.ndim != 3:
        raise ValueError(f"frames must be (T, H, W), got shape {frames.shape}")
    n_pixels = frames.shape[1] * frames.shape[2]
    sums = np.empty(len(frames))
    squares = np.empty(len(frames))
    # Sums of values and squares in float64 accumulators over float32 blocks: three times
    # faster than ndarray.var on 512 px frames, same result, and no copy of the whole cine.
    for start, block in _blocks(frames):
        values = block.reshape(len(block), -1).astype(np.float32)
        sums[start : start + len(block)] = values.sum(axis=1, dtype=np.float64)
        squares[start : start + len(block)] = np.einsum(
            "ij,ij->i", values, values, dtype=np.float64
        )
    mean = sums / n_pixels
    return mean, np.maximum(squares / n_pixels - mean * mean, 0.0)


def _blocks(frames: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(first index, frames) in blocks of `BLOCK_FRAMES`: views, no copies."""
    for start in range(0, len(frames), BLOCK_FRAMES):
        yield start, frames[start : start + BLOCK_FRAMES]


def local_extrema(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of local minima and maxima; end points count when beyond their one neighbour.

    A plateau counts once, at its first index, so a flat run is not a cluster of extrema.
    """
    n = len(series)
    if n < 2:
        return np.arange(n), np.arange(n)
    keep = np.concatenate([[True], np.diff(series) != 0])
    idx = np.flatnonzero(keep)
    values = series[idx]
    padded = np.concatenate([[np.nan], values, [np.nan]])
    left, right = padded[:-2], padded[2:]
    with np.errstate(invalid="ignore"):
        is_min = (np.isnan(left) | (values < left)) & (np.isnan(right) | (values < right))
        is_max = (np.isnan(left) | (values > left)) & (np.isnan(right) | (values > right))
    return idx[is_min], idx[is_max]


def opacification(frames: np.ndarray) -> np.ndarray:
    """Per-frame dark-detail contrast: how much darker than their surroundings pixels are.

    Contrast-filled vessels are thin structures darker than the local background, so the
    mean of (local background - pixel), where positive, rises as they fill. Unlike the raw
    mean intensity it ignores slow brightness drift from automatic exposure control, which
    on real cines can brighten the frames while contrast flows in. Computed on frames
    subsampled to about `DETAIL_SIZE` px, where vessels are a few pixels wide.
    """
    from scipy import ndimage  # here, not at the top: the CLI imports this module to start

    step = max(1, frames.shape[1] // DETAIL_SIZE)
    detail = np.empty(len(frames))
    for start, block in _blocks(frames):
        small = block[:, ::step, ::step].astype(np.float32)
        background = ndimage.gaussian_filter(small, sigma=(0, DETAIL_SIGMA, DETAIL_SIGMA))
        darker = np.clip(background - small, 0, None)
        detail[start : start + len(block)] = darker.reshape(len(darker), -1).mean(
            axis=1, dtype=np.float64
        )
    return detail


def _zscore(series: np.ndarray) -> np.ndarray:
    spread = series.std()
    return (series - series.mean()) / spread if spread > 0 else np.zeros_like(series)


def candidate_frames(frames: np.ndarray, min_gap: int = DEFAULT_MIN_GAP) -> list[Candidate]:
    """Candidates at extrema of mean and variance, no two closer than `min_gap` frames.

    Where extrema crowd, the most pronounced one (largest |z| in its own series) wins, so
    near-duplicates of the same moment are dropped. Returned in frame order.
    """
    if min_gap < 1:
        raise ValueError(f"min_gap must be >= 1, got {min_gap}")
    mean, variance = frame_statistics(frames)
    z_mean, z_var = _zscore(mean), _zscore(variance)
    kinds: dict[int, list[str]] = {}
    strength: dict[int, float] = {}
    for name, series, z in (("mean", mean, z_mean), ("variance", variance, z_var)):
        minima, maxima = local_extrema(series)
        for label, indices in (("min", minima), ("max", maxima)):
            for i in indices.tolist():
                kinds.setdefault(i, []).append(f"{name}_{label}")
                strength[i] = max(strength.get(i, 0.0), abs(float(z[i])))
    chosen: list[int] = []
    for i in sorted(kinds, key=lambda k: (-strength[k], k)):
        if all(abs(i - j) >= min_gap for j in chosen):
            chosen.append(i)
    chosen.sort()
    # Only the chosen frames' opacification is needed (a third of the rule's time when computed
    # for every frame), taken a block at a time so no copy of many frames is made.
    detail = [score for start in range(0, len(chosen), BLOCK_FRAMES)
              for score in opacification(frames[chosen[start : start + BLOCK_FRAMES]])]
    return [
        Candidate(i, tuple(kinds[i]), float(mean[i]), float(variance[i]), float(score))
        for i, score in zip(chosen, detail, strict=True)
    ]

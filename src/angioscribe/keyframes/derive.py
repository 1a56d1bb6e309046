"""Bad and contrast-free training frames derived from diagnostic ones, by removing contrast.

ARCADE holds only diagnostic ("better") frames, yet the classifier must also recognise frames
taken before the contrast arrives ("other") and half-filled, washed-out or blurred ones ("bad").
Iodinated contrast only darkens the lumen, and the lumen is thin, so a grey-scale morphological
closing (a max-then-min filter wider than any coronary lumen) returns the frame as it looked
without contrast: background, ribs and diaphragm stay, the vessels vanish. Blending the frame
with that background by an opacification level in [0, 1] then moves it along the filling
phase of a real injection:

    frame_at(level) = background - level * (background - frame)

level ~1 is the diagnostic frame, ~0 the contrast-free one. See docs/keyframes.md for the
exact recipe and its limits (the catheter, also dark and thin, fades with the vessels).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from angioscribe.anatomy import Laterality

Derivation = Literal["better", "other", "faint", "partial", "motion"]
BAD_DERIVATIONS: tuple[Derivation, ...] = ("faint", "partial", "motion")

# Widest lumen (left main, ~5 mm) is ~10 px at the 256 px working size; the kernel must exceed it.
CLOSING_PX = 15
# Segments that fill first: ostial/proximal parts, where contrast is seen while the rest is empty.
PROXIMAL_SEGMENTS: dict[Laterality, tuple[str, ...]] = {"LCA": ("5", "6", "11"), "RCA": ("1",)}
MID_SEGMENTS: dict[Laterality, tuple[str, ...]] = {"LCA": ("7", "13"), "RCA": ("2",)}


def contrast_free_background(frame: np.ndarray) -> np.ndarray:
    """The frame without its opacified vessels: grey closing, smoothed, never darker than it.

    The smoothing hides the blocky footprint of the closing; taking the maximum with the frame
    keeps the subtraction (background - frame) non-negative, so blending never adds darkness.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (CLOSING_PX, CLOSING_PX))
    closed = cv2.morphologyEx(frame, cv2.MORPH_CLOSE, kernel)
    smooth = cv2.GaussianBlur(closed.astype(np.float32), (0, 0), 2.0)
    return np.maximum(smooth, frame.astype(np.float32))


def opacify(frame: np.ndarray, background: np.ndarray, level: float | np.ndarray) -> np.ndarray:
    """uint8 frame at a given opacification level (scalar or per-pixel map in [0, 1])."""
    blended = background - level * (background - frame.astype(np.float32))
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def derive_frame(
    frame: np.ndarray,
    derivation: Derivation,
    rng: np.random.Generator,
    segment_masks: dict[str, np.ndarray] | None = None,
    laterality: Laterality | None = None,
) -> np.ndarray:
    """A frame of the requested kind from a diagnostic (H, W) uint8 frame.

    `better` keeps 85-100 % of the contrast (so every class shows the same blending texture and
    the model cannot key on it); `other` 0-8 %; `faint` 20-50 % (poor contrast, washing in or
    out); `partial` keeps proximal segments and empties the rest (early filling; needs the
    SYNTAX segment masks, falls back to `faint` without them); `motion` is a 12-24 px linear
    motion blur of a 60-100 % frame (a heartbeat or table move during exposure).
    """
    background = contrast_free_background(frame)
    noise = quantum_noise_sigma(frame)
    if derivation == "better":
        level: float | np.ndarray = rng.uniform(0.85, 1.0)
    elif derivation == "other":
        level = rng.uniform(0.0, 0.08)
    elif derivation == "partial" and segment_masks and laterality:
        level = _filling_map(frame.shape, segment_masks, laterality, rng)
    elif derivation in ("faint", "partial"):
        level = rng.uniform(0.2, 0.5)
    elif derivation == "motion":
        blurred = motion_blur(opacify(frame, background, rng.uniform(0.6, 1.0)), rng)
        return add_noise(blurred, noise, rng)
    else:
        raise ValueError(f"unknown derivation {derivation!r}; expected {Derivation.__args__}")
    return add_noise(opacify(frame, background, level), noise * np.sqrt(1.0 - level**2), rng)


def quantum_noise_sigma(frame: np.ndarray) -> float:
    """Robust noise level (grey values): median absolute deviation from a 3x3 median filter."""
    residual = frame.astype(np.float32) - cv2.medianBlur(frame, 3).astype(np.float32)
    return float(1.4826 * np.median(np.abs(residual)))


def add_noise(frame: np.ndarray, sigma: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise back where the closing or a blur smoothed it away, so noise texture is
    the same in every class and cannot stand in for the label."""
    noisy = frame.astype(np.float32) + rng.normal(0.0, 1.0, frame.shape).astype(np.float32) * sigma
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def _filling_map(
    shape: tuple[int, ...],
    segment_masks: dict[str, np.ndarray],
    laterality: Laterality,
    rng: np.random.Generator,
) -> np.ndarray:
    """Opacification map of early filling: proximal (and sometimes mid) segments full, the rest
    0-15 %, with soft edges so the cut-off looks like a contrast front, not a mask."""
    filled = list(PROXIMAL_SEGMENTS[laterality])
    if rng.random() < 0.5:
        filled += MID_SEGMENTS[laterality]
    present = [segment_masks[s] for s in filled if s in segment_masks]
    level = np.full(shape, rng.uniform(0.0, 0.15), dtype=np.float32)
    if present:
        full = cv2.dilate(np.maximum.reduce(present).astype(np.uint8), np.ones((7, 7), np.uint8))
        level = np.maximum(level, full.astype(np.float32))
    return cv2.GaussianBlur(level, (0, 0), 3.0)


def motion_blur(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linear blur of random length (12-24 px at 256 px) and direction."""
    length = int(rng.integers(12, 25))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    centre = (length / 2 - 0.5, length / 2 - 0.5)
    rotation = cv2.getRotationMatrix2D(centre, rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)

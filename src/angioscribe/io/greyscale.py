"""The one mapping from source pixel values to the 8-bit grey scale a Cine holds.

Every reader ends here, so a windowed 12-bit DICOM, a 16-bit PNG and a video land on the same
0-255 scale and frame statistics stay comparable across sources.
"""

from __future__ import annotations

import numpy as np


def scale_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly onto 0-255, clipping outside; an empty range maps to 0.

    Works in float32 on whatever array it is given, so callers pass one frame at a time for
    long cines instead of a float copy of the whole loop.
    """
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an (..., 3) array, as float32 in the input's value range.

    Colour angiograms are screen captures of grey images, so luma recovers the grey level.
    """
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb.astype(np.float32) @ weights

"""Look-alike images: the same picture stored twice, or frames of one cine.

Public angiography datasets carry no patient ids, yet they are cut from cines: ARCADE holds the
same picture under two names (in both tasks, and across its official train/val split) and
neighbouring frames of one acquisition. A split that treats each image as its own patient then
puts one cine on both sides and flatters every validation number. Grouping look-alikes and
splitting by group prevents that without any metadata.

The signature is a 32x32 thumbnail normalised to zero mean and unit length, so the cosine of two
signatures is their Pearson correlation: insensitive to brightness and contrast, dominated by
the anatomy and background (spine, diaphragm, catheter) that a patient's frames share. On ARCADE,
pairs at or above 0.97 were the same picture or frames of the same acquisition when checked by
eye; below about 0.96 groups start chaining unrelated images together (see docs/data.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from angioscribe.errors import InputError

LOOKALIKE_THRESHOLD = 0.97
SIGNATURE_SIZE = 32
_BLOCK_ROWS = 1024  # signatures compared per block, so memory stays O(block x n), not O(n^2)


def image_signature(path: str | Path) -> np.ndarray:
    """Unit-length, zero-mean 32x32 thumbnail of a greyscale image (float32, flattened)."""
    try:
        with Image.open(path) as image:
            image.draft("L", (2 * SIGNATURE_SIZE, 2 * SIGNATURE_SIZE))  # JPEG: decode small
            thumbnail = image.convert("L").resize(
                (SIGNATURE_SIZE, SIGNATURE_SIZE), Image.Resampling.BICUBIC
            )
    except OSError as error:
        raise InputError(path, f"cannot read image: {error}") from error
    values = np.asarray(thumbnail, dtype=np.float32).ravel()
    values = values - values.mean()
    norm = float(np.linalg.norm(values))
    return values / norm if norm > 0 else values


def lookalike_groups(
    signatures: Iterable[np.ndarray], threshold: float = LOOKALIKE_THRESHOLD
) -> np.ndarray:
    """For each signature, the index of the first member of its look-alike group.

    Images correlating at `threshold` or above are linked, and linked images form one group
    (transitively), so a cine's frames stay together even when its first and last frames differ.
    """
    rows = list(signatures)
    if not rows:
        return np.empty(0, dtype=np.int64)
    matrix = np.stack(rows).astype(np.float32)
    parent = np.arange(len(matrix))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = int(parent[index])
        return index

    for start in range(0, len(matrix), _BLOCK_ROWS):
        similarity = matrix[start : start + _BLOCK_ROWS] @ matrix.T
        for row, column in np.argwhere(similarity >= threshold):
            first, second = root(start + int(row)), root(int(column))
            if first != second:
                parent[max(first, second)] = min(first, second)
    return np.array([root(index) for index in range(len(matrix))])

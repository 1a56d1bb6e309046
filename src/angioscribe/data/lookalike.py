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

Pairs at 0.99 or above are one view: the same picture (re-encoded, or stored twice) or frames a
fraction of a heartbeat apart. Such pairs measure how consistent ARCADE's labels are
(`evaluate.label_agreement`) and, across its two tasks, which segment a real annotated stenosis
lies on (`evaluate.segment_naming`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from angioscribe.data.arcade import ArcadeImage, load_arcade
from angioscribe.errors import InputError

LOOKALIKE_THRESHOLD = 0.97
SAME_VIEW_THRESHOLD = 0.99
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


def lookalike_pairs(first: np.ndarray, second: np.ndarray | None = None,
                    threshold: float = LOOKALIKE_THRESHOLD) -> list[tuple[int, int, float]]:
    """(i, j, correlation) for every pair of signatures correlating at `threshold` or above:
    i indexes the rows of `first`, j those of `second`, or (no `second`) both index `first`
    with i < j."""
    others = first if second is None else second
    pairs = []
    for start in range(0, len(first), _BLOCK_ROWS):
        similarity = first[start : start + _BLOCK_ROWS] @ others.T
        for row, column in np.argwhere(similarity >= threshold):
            i, j = start + int(row), int(column)
            if second is not None or j > i:
                pairs.append((i, j, float(similarity[row, column])))
    return pairs


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
    parent = np.arange(len(rows))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = int(parent[index])
        return index

    for i, j, _ in lookalike_pairs(np.stack(rows).astype(np.float32), threshold=threshold):
        first, second = root(i), root(j)
        if first != second:
            parent[max(first, second)] = min(first, second)
    return np.array([root(index) for index in range(len(rows))])


def frames_in_both_tasks(root: str | Path, syntax_split: str = "val",
                         stenosis_splits: Sequence[str] = ("train", "val"),
                         threshold: float = SAME_VIEW_THRESHOLD
                         ) -> list[tuple[ArcadeImage, ArcadeImage]]:
    """(stenosis-task image, syntax-task image of the same view) for every stenosis frame that
    `syntax_split` lists too (its best match there): frames with lesion and segment labels."""
    stenosis = [image for split in stenosis_splits
                for image in load_arcade(root, "stenosis", split).images]
    syntax = load_arcade(root, "syntax", syntax_split).images
    best: dict[int, tuple[float, int]] = {}
    for i, j, correlation in lookalike_pairs(
            np.stack([image_signature(image.path) for image in stenosis]),
            np.stack([image_signature(image.path) for image in syntax]), threshold):
        if i not in best or correlation > best[i][0]:
            best[i] = (correlation, j)
    return [(stenosis[i], syntax[j]) for i, (_, j) in sorted(best.items())]

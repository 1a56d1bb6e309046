"""Frames ARCADE holds more than once, found by their pixels.

ARCADE lists some views twice within a task (pixel copies under two file names, or neighbouring
frames of one cine) and a third of the stenosis task's frames again in the syntax task (the
same pixels re-encoded). Such pairs measure how consistent the labels are
(`evaluate.label_agreement`), which val frames training saw, and, across tasks, which segment
a real annotated stenosis lies on (`evaluate.segment_naming`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from angioscribe.data.arcade import ArcadeImage, load_arcade

# Frames are compared as means over blocks of this many pixels: robust to JPEG noise, and the
# 64 x 64 block image of a 512 px frame keeps every vessel's position.
BLOCK = 8
# Mean absolute difference of the block means, in grey levels, below which two frames are taken
# as the same view. Every ARCADE pair under 3 is one view (identical, re-encoded, or a few cine
# frames apart; checked by eye on the stenosis task); between 3 and 5 views start to differ.
MAX_DIFFERENCE = 3.0


def block_means(frame: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """The frame as a flat vector of block means (edges that do not fill a block dropped)."""
    height, width = (frame.shape[0] // block) * block, (frame.shape[1] // block) * block
    blocks = frame[:height, :width].reshape(height // block, block, width // block, block)
    return blocks.mean(axis=(1, 3), dtype=np.float32).ravel()


def close_pairs(first: Sequence[np.ndarray], second: Sequence[np.ndarray] | None = None,
                max_difference: float = MAX_DIFFERENCE) -> list[tuple[int, int, float]]:
    """(i, j, difference) for every pair of same-size frames whose block means differ by less
    than `max_difference` grey levels on average: i indexes `first`, j `second`, or (no
    `second`) both index `first` with i < j."""
    others = first if second is None else second
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, frame in enumerate(others):
        groups.setdefault(frame.shape, []).append(j)
    stacked = {shape: np.stack([block_means(others[j]) for j in members])
               for shape, members in groups.items()}
    pairs = []
    for i, frame in enumerate(first):
        members = groups.get(frame.shape, [])
        if not members:
            continue
        differences = np.abs(stacked[frame.shape] - block_means(frame)).mean(axis=1)
        for k in np.nonzero(differences < max_difference)[0]:
            j = members[k]
            if second is not None or j > i:
                pairs.append((i, j, float(differences[k])))
    return pairs


def frames_in_both_tasks(root: str | Path, syntax_split: str = "val",
                         stenosis_splits: Sequence[str] = ("train", "val")
                         ) -> list[tuple[ArcadeImage, ArcadeImage]]:
    """(stenosis-task image, syntax-task image of the same pixels) for every stenosis frame
    that `syntax_split` lists too (its closest match there): frames with both lesion and
    segment labels."""
    stenosis = [image for split in stenosis_splits
                for image in load_arcade(root, "stenosis", split).images]
    syntax = load_arcade(root, "syntax", syntax_split).images
    closest: dict[int, tuple[float, int]] = {}
    for i, j, difference in close_pairs([image.load() for image in stenosis],
                                        [image.load() for image in syntax]):
        if i not in closest or difference < closest[i][0]:
            closest[i] = (difference, j)
    return [(stenosis[i], syntax[j]) for i, (_, j) in sorted(closest.items())]

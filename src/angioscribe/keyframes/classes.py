"""The six CAG-VLM key-frame classes: laterality (LCA/RCA) x quality (better/bad/other).

CAG-VLM trains one six-way head instead of two heads because a cardiologist labels a frame in one
look ("a good left"), and the paper's three figures of merit are all projections of the six-way
confusion matrix: laterality alone, and "LCA_better / RCA_better / everything else".
"""

from __future__ import annotations

from typing import Literal

from angioscribe.anatomy import Laterality

Quality = Literal["better", "bad", "other"]

LATERALITIES: tuple[Laterality, ...] = ("LCA", "RCA")
QUALITIES: tuple[Quality, ...] = ("better", "bad", "other")
CLASSES: tuple[str, ...] = tuple(
    f"{side}_{quality}" for side in LATERALITIES for quality in QUALITIES
)
KEYFRAME_CLASSES: tuple[str, ...] = ("LCA_better", "RCA_better", "others")


def class_name(laterality: Laterality, quality: Quality) -> str:
    """'LCA_better' from ('LCA', 'better'); refuses values outside the vocabulary."""
    if laterality not in LATERALITIES or quality not in QUALITIES:
        raise ValueError(f"unknown laterality/quality {laterality!r}/{quality!r}")
    return f"{laterality}_{quality}"


def class_index(laterality: Laterality, quality: Quality) -> int:
    return CLASSES.index(class_name(laterality, quality))


def split_class(name: str) -> tuple[Laterality, Quality]:
    """('LCA', 'better') from 'LCA_better'."""
    if name not in CLASSES:
        raise ValueError(f"unknown key-frame class {name!r}; expected one of {CLASSES}")
    side, quality = name.split("_")
    return side, quality  # type: ignore[return-value]


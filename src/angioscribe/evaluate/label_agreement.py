"""How well ARCADE's annotations agree with themselves: one view annotated twice.

ARCADE holds frames that are pixel-identical, or neighbouring frames of one cine (same patient,
same projection, a little heart motion apart), each annotated on its own (`data.lookalike`).
Scoring one frame's annotations as the prediction for the other's with the official metric
measures how consistent the labels are, which is the level a model that imitates the annotators
can be expected to reach against them. A pair across splits is also a frame of val (or test)
that training saw.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from angioscribe.data.arcade import ArcadeImage, ArcadeSplit
from angioscribe.data.lookalike import SAME_VIEW_THRESHOLD, image_signature, lookalike_pairs
from angioscribe.evaluate.arcade_metric import arcade_f1
from angioscribe.regions import Region, coco_results


@dataclass(frozen=True)
class ListedFrame:
    """An image with the split that lists it."""

    split: str
    image: ArcadeImage

    @property
    def name(self) -> str:
        return f"{self.split}/{self.image.file_name}"


@dataclass(frozen=True)
class RepeatedView:
    """Two frames of one view and how their annotations score against each other.

    `f1_first_as_truth` scores the second frame's annotations as predictions against the
    first's (None when the first has none: the official metric leaves such images out).
    """

    first: ListedFrame
    second: ListedFrame
    correlation: float
    identical: bool
    f1_first_as_truth: float | None
    f1_second_as_truth: float | None

    @property
    def agreement(self) -> float | None:
        """Mean of the two directions that can be scored."""
        scores = [f for f in (self.f1_first_as_truth, self.f1_second_as_truth) if f is not None]
        return statistics.mean(scores) if scores else None

    @property
    def across_splits(self) -> bool:
        return self.first.split != self.second.split

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first.name, "second": self.second.name,
                "correlation": round(self.correlation, 4), "identical": self.identical,
                "annotations": f"{len(self.first.image.annotations)}/"
                               f"{len(self.second.image.annotations)}",
                "f1_first_as_truth": self.f1_first_as_truth,
                "f1_second_as_truth": self.f1_second_as_truth, "agreement": self.agreement}


def listed_frames(splits: Sequence[ArcadeSplit]) -> list[ListedFrame]:
    return [ListedFrame(split.split, image) for split in splits for image in split.images]


def find_repeated_views(frames: Sequence[ListedFrame], task: str,
                        threshold: float = SAME_VIEW_THRESHOLD) -> list[RepeatedView]:
    """Every pair of frames of one view (look-alike signatures correlating at `threshold` or
    above), scored both ways with the official metric of `task`, closest first."""
    signatures = np.stack([image_signature(listed.image.path) for listed in frames])
    views = [_scored(frames[i], frames[j], correlation, task)
             for i, j, correlation in lookalike_pairs(signatures, threshold=threshold)]
    return sorted(views, key=lambda view: -view.correlation)


def _scored(first: ListedFrame, second: ListedFrame, correlation: float,
            task: str) -> RepeatedView:
    truth, other = _as_coco(first.image), _as_coco(second.image)
    identical = bool(np.array_equal(first.image.load(), second.image.load()))
    return RepeatedView(first, second, correlation, identical,
                        arcade_f1(truth, other, task).f1 if first.image.annotations else None,
                        arcade_f1(other, truth, task).f1 if second.image.annotations else None)


def _as_coco(image: ArcadeImage) -> dict[str, Any]:
    """The image's annotations as a COCO file under one shared name, so either side can be
    scored as the prediction for the other."""
    record = {"id": 1, "file_name": "frame", "width": image.width, "height": image.height}
    regions = [Region(a.category_id, a.polygon, 1.0, 0.0) for a in image.annotations]
    return coco_results([record], [regions])


def agreement_summary(views: Sequence[RepeatedView]) -> list[dict[str, Any]]:
    """Mean agreement over identical frames, over neighbouring frames, and over all pairs, with
    how many pairs cross splits."""
    groups = {"identical frames": [v for v in views if v.identical],
              "neighbouring frames": [v for v in views if not v.identical], "all": list(views)}
    rows = []
    for name, group in groups.items():
        scored = [v.agreement for v in group if v.agreement is not None]
        rows.append({"pairs": name, "n": len(group),
                     "mean_f1": statistics.mean(scored) if scored else None,
                     "median_f1": statistics.median(scored) if scored else None,
                     "across_splits": sum(v.across_splits for v in group)})
    return rows


def plot_repeated_views(views: Sequence[RepeatedView], path: str | Path,
                        limit: int = 16) -> Path:
    """The closest pairs side by side with their annotations outlined, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(views)[:limit]
    fig, axes = plt.subplots(max(len(shown), 1), 2, figsize=(6, 3 * max(len(shown), 1)),
                             squeeze=False, constrained_layout=True)
    for row, view in zip(axes, shown, strict=False):
        for axis, listed in zip(row, (view.first, view.second), strict=True):
            axis.imshow(listed.image.load(), cmap="gray", vmin=0, vmax=255)
            for annotation in listed.image.annotations:
                closed = np.vstack([annotation.polygon, annotation.polygon[:1]])
                axis.plot(closed[:, 0], closed[:, 1], color="red", lw=1)
            axis.set_title(listed.name, fontsize=8)
            axis.axis("off")
        agreement = "n/a" if view.agreement is None else f"{view.agreement:.2f}"
        row[0].text(4, 20, f"correlation {view.correlation:.4f}, F1 {agreement}",
                    color="yellow", fontsize=8)
    for axis in axes[len(shown):].ravel():
        axis.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

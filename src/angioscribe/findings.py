"""Image-side findings: which coronary segment each stenosis sits on, and an overlay figure.

The segmenter gives a map of SYNTAX segments and the stenosis model gives lesion regions; a
lesion is assigned to the segment covering most of its pixels. This is what grounds the
report's vessel numbering (CAG-VLM's drafts got it wrong ~70 % of the time without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import matplotlib
import numpy as np

from angioscribe.anatomy import label_en, laterality_of_segments, segment_by_arcade_id
from angioscribe.regions import Region

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# A lesion outlined just beside its vessel's labelled pixels still belongs to that vessel.
NEAREST_SEGMENT_RADIUS = 12


@dataclass
class StenosisFinding:
    """One lesion on one segment. `overlap` is the share of the lesion's pixels on that
    segment (0 when it was assigned to the nearest segment within a few pixels instead),
    `confidence` the stenosis model's mean probability over the lesion."""

    segment: str | None
    laterality: str | None
    confidence: float
    overlap: float
    bbox: tuple[float, float, float, float]
    polygon: list[list[float]]

    @property
    def label(self) -> str:
        """Report-style name, "#7 mid LAD", or "unassigned" when no segment is near."""
        return label_en(self.segment) if self.segment else "unassigned"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StenosisFinding:
        return cls(segment=data["segment"], laterality=data["laterality"],
                   confidence=float(data["confidence"]), overlap=float(data["overlap"]),
                   bbox=tuple(data["bbox"]), polygon=[list(p) for p in data["polygon"]])


@dataclass
class FrameFindings:
    """Per-frame findings: visible segments (SYNTAX numbers), the side, and the lesions."""

    segments: list[str] = field(default_factory=list)
    laterality: str | None = None
    stenoses: list[StenosisFinding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"segments": list(self.segments), "laterality": self.laterality,
                "stenoses": [s.to_dict() for s in self.stenoses]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameFindings:
        return cls(segments=list(data.get("segments", [])), laterality=data.get("laterality"),
                   stenoses=[StenosisFinding.from_dict(s) for s in data.get("stenoses", [])])


def segment_label_map(regions: Sequence[Region], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int map of ARCADE segment ids from the kept segment polygons (0 elsewhere)."""
    label_map = np.zeros(shape, dtype=np.int32)
    for region in sorted(regions, key=lambda r: -r.area):  # small segments drawn last, on top
        cv2.fillPoly(label_map, [np.round(region.polygon).astype(np.int32)], region.category_id)
    return label_map


def frame_findings(label_map: np.ndarray, stenoses: Sequence[Region]) -> FrameFindings:
    """Assign each stenosis region to the segment under most of its pixels."""
    present = sorted({int(i) for i in np.unique(label_map) if i > 0})
    numbers = [segment_by_arcade_id(i).number for i in present]
    findings = FrameFindings(segments=numbers, laterality=laterality_of_segments(numbers))
    for region in stenoses:
        findings.stenoses.append(_assign(label_map, region))
    return findings


def _assign(label_map: np.ndarray, region: Region) -> StenosisFinding:
    lesion = np.zeros(label_map.shape, dtype=np.uint8)
    cv2.fillPoly(lesion, [np.round(region.polygon).astype(np.int32)], 1)
    segment_id, overlap = _majority_segment(label_map, lesion.astype(bool))
    if segment_id is None:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEAREST_SEGMENT_RADIUS + 1,) * 2)
        segment_id, _ = _majority_segment(label_map, cv2.dilate(lesion, kernel).astype(bool))
        overlap = 0.0
    segment = segment_by_arcade_id(segment_id) if segment_id is not None else None
    return StenosisFinding(
        segment=segment.number if segment else None,
        laterality=segment.laterality if segment else None,
        confidence=region.score,
        overlap=overlap,
        bbox=region.bbox,
        polygon=region.polygon.tolist(),
    )


def _majority_segment(label_map: np.ndarray, where: np.ndarray) -> tuple[int | None, float]:
    labels = label_map[where]
    if labels.size == 0:
        return None, 0.0
    counts = np.bincount(labels)
    counts[0] = 0
    if counts.sum() == 0:
        return None, 0.0
    best = int(counts.argmax())
    return best, float(counts[best] / labels.size)


def plot_findings(image: np.ndarray, segments: Sequence[Region], findings: FrameFindings,
                  path: str | Path) -> Path:
    """PNG overlay: segments filled in colour and numbered, stenoses outlined in red with the
    segment they were assigned to, on the grey frame at its own resolution."""
    height, width = image.shape
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    axes = fig.add_axes((0, 0, 1, 1))
    axes.imshow(image, cmap="gray", vmin=0, vmax=255)
    colours = plt.get_cmap("tab20")
    for region in segments:
        colour = colours(region.category_id % 20)
        axes.fill(*region.polygon.T, color=colour, alpha=0.45, lw=0)
        x, y = _label_point(region.polygon)
        axes.text(x, y, segment_by_arcade_id(region.category_id).number, color="white",
                  fontsize=8, ha="center", va="center", weight="bold",
                  bbox={"boxstyle": "round,pad=0.15", "fc": colour, "alpha": 0.8, "lw": 0})
    for stenosis in findings.stenoses:
        outline = np.asarray(stenosis.polygon)
        axes.plot(*np.vstack([outline, outline[:1]]).T, color="red", lw=1.5)
        x, y, w, _ = stenosis.bbox
        axes.text(x + w, y, f"{stenosis.label.split(' ')[0]} {stenosis.confidence:.2f}",
                  color="red", fontsize=8, ha="left", va="bottom", weight="bold")
    axes.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label_point(polygon: np.ndarray) -> tuple[float, float]:
    """The polygon vertex nearest its mean: on the vessel even when the segment is curved."""
    centre = polygon.mean(axis=0)
    nearest = polygon[np.argmin(((polygon - centre) ** 2).sum(axis=1))]
    return float(nearest[0]), float(nearest[1])

"""Image-side findings: which coronary segment each stenosis sits on, how severe it is, and an
overlay figure.

The SYNTAX model gives segment probabilities (and the segments its tuned rules report), the
stenosis model gives lesion regions; a lesion is named after the segment with the most
probability over its pixels. This is what grounds the report's vessel numbering (CAG-VLM's
drafts got it wrong ~70 % of the time without it; docs/segmentation.md measures this step).
Each lesion is then measured by QCA (`angioscribe.qca`) on the SYNTAX model's vessel mask, so a
finding says "#6 72 %" and not only where a lesion is. Thrombus and calcification are not
assessed from the images: every lesion says so (`thrombus_assessed: false`, `thrombus: null`),
so that a draft never reads "no thrombus" where nobody looked (docs/findings.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import matplotlib
import numpy as np

from angioscribe.anatomy import SEGMENTS, label_en, laterality_of_segments, segment_by_arcade_id
from angioscribe.dominance import name_for_dominance
from angioscribe.qca import NoVesselError, measure_lesion
from angioscribe.regions import Region, polygon_mask

if TYPE_CHECKING:  # only for annotations: findings need no torch to load
    from angioscribe.models.segmenter import Segmenter

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# A lesion outlined just beside its vessel still belongs to that vessel.
NEAREST_SEGMENT_RADIUS = 12
# Below this mean probability of any segment over a lesion's pixels, it lies off the vessels.
MIN_VESSEL_PROBABILITY = 0.1
# A pixel is vessel where the SYNTAX model's background probability is below this (all segment
# channels together, as docs/qca.md asks: QCA needs the whole vessel, not the reported segments).
VESSEL_BACKGROUND_BELOW = 0.5
# Height of the overlay's title band above the frame.
TITLE_PX = 24
# The QCA values every lesion carries; all None when it could not be measured.
MEASUREMENT_KEYS = ("stenosis_percent", "grade", "cto", "mld_px", "reference_px", "length_px",
                    "mld_mm", "reference_mm", "length_mm")
# Lesion characteristics beside the QCA values: the value is null and `<name>_assessed` false
# when nothing looked for it; only an assessed false means "none".
ASSESSMENT_KEYS = ("thrombus", "thrombus_assessed", "calcification", "calcification_assessed")
# A segment lies around a lesion when it holds this many pixels of probability > 0.5 within
# NEAREST_SEGMENT_RADIUS of the lesion (the SYNTAX score's branch points read it).
ADJACENT_MIN_PIXELS = 8


def percent_text(stenosis_percent: float | None) -> str:
    """A % diameter stenosis as printed ("72 %"); "not measured" when there is none."""
    return "not measured" if stenosis_percent is None else f"{stenosis_percent:.0f} %"


def unmeasured() -> dict[str, Any]:
    """The measurement keys of a lesion that was not (or could not be) measured."""
    return dict.fromkeys(MEASUREMENT_KEYS)


def not_assessed() -> dict[str, Any]:
    """Thrombus and calcification of a lesion nothing assessed them on: unknown, not absent."""
    return {"thrombus": None, "thrombus_assessed": False,
            "calcification": None, "calcification_assessed": False}


@dataclass
class StenosisFinding:
    """One lesion on one segment. `support` is that segment's share of the SYNTAX model's
    segment probability over the lesion's pixels (over the lesion widened by a few pixels when
    it lies beside the vessel), `confidence` the stenosis model's mean probability over it (how
    sure the model is that a lesion is there, not how severe it is). `measurement` holds the
    QCA values of `MEASUREMENT_KEYS` (% diameter stenosis, grade, occlusion, diameters and
    length), all None when the lesion was not measured. `assessment` holds thrombus and
    calcification (`ASSESSMENT_KEYS`, not assessed unless something measured them);
    `adjacent_segments` the segments the SYNTAX model sees around the lesion, where a branch
    point shows (None when unknown)."""

    segment: str | None
    laterality: str | None
    confidence: float
    support: float
    bbox: tuple[float, float, float, float]
    polygon: list[list[float]]
    measurement: dict[str, Any] = field(default_factory=unmeasured)
    assessment: dict[str, Any] = field(default_factory=not_assessed)
    adjacent_segments: list[str] | None = None

    @property
    def label(self) -> str:
        """Report-style name, "#7 mid LAD", or "unassigned" when no segment is near."""
        return label_en(self.segment) if self.segment else "unassigned"

    @property
    def caption(self) -> str:
        """The overlay's words for the lesion: "#6 72 % (conf. 0.94)"; "%" only for stenosis."""
        severity = percent_text(self.measurement["stenosis_percent"])
        return f"{self.label.split(' ')[0]} {severity} (conf. {self.confidence:.2f})"

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        return {**record, **record.pop("measurement"), **record.pop("assessment"),
                "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StenosisFinding:
        return cls(segment=data["segment"], laterality=data["laterality"],
                   confidence=float(data["confidence"]), support=float(data["support"]),
                   bbox=tuple(data["bbox"]), polygon=[list(p) for p in data["polygon"]],
                   measurement={key: data.get(key) for key in MEASUREMENT_KEYS},
                   assessment={**not_assessed(),
                               **{k: data[k] for k in ASSESSMENT_KEYS if k in data}},
                   adjacent_segments=data.get("adjacent_segments"))


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


def frame_findings(segments: Sequence[Region], stenoses: Sequence[Region],
                   segment_probabilities: np.ndarray, label_ids: Sequence[int],
                   side: str | None = None) -> FrameFindings:
    """The frame's reported segments and side, and each stenosis named after its segment.

    `segments` are the SYNTAX regions kept by the metric-tuned rules (listed and drawn);
    `segment_probabilities` (C, H, W) is the SYNTAX model's softmax for the same frame, channel
    c being ARCADE id `label_ids[c]` (0 = background). Lesions are named from the probabilities,
    not from the kept regions: those rules drop every class the model is unsure of (one wrong
    class zeroes an ARCADE image), side branches above all, and a lesion on a dropped branch
    would be named after a neighbouring vessel. Lesions are named on the side the segments
    show; where they show none, on `side` (the key-frame classifier's, when known), so a frame
    whose segments the rules all drop does not get lesions of the other coronary.
    """
    numbers = [segment_by_arcade_id(i).number for i in sorted({r.category_id for r in segments})]
    laterality = laterality_of_segments(numbers)
    findings = FrameFindings(segments=numbers, laterality=laterality)
    channels = _segment_channels(label_ids, laterality or side)
    for region in stenoses:
        findings.stenoses.append(_assign(segment_probabilities, channels, region))
    return findings


def segment_frame(frame: np.ndarray, syntax: Segmenter, stenosis: Segmenter,
                  mm_per_px: float | None = None,
                  side: str | None = None) -> tuple[list[Region], FrameFindings]:
    """Both models on one frame: the SYNTAX regions (to draw) and the frame's findings, each
    lesion measured (`mm_per_px` from `qca.mm_per_pixel`, None when the geometry is unknown);
    `side` names lesions where the segments show no side (`frame_findings`)."""
    probabilities = syntax.probabilities(frame)
    segments = syntax.post_process(probabilities)
    findings = frame_findings(segments, stenosis.regions(frame), probabilities,
                              syntax.entry.label_ids, side)
    vessel = vessel_mask(probabilities, syntax.entry.label_ids)
    for lesion in findings.stenoses:
        lesion.measurement = measure(frame, vessel, lesion.polygon, mm_per_px)
    return segments, findings


def vessel_mask(probabilities: np.ndarray, label_ids: Sequence[int]) -> np.ndarray:
    """Where the SYNTAX model sees any vessel: its background probability below 0.5."""
    return probabilities[list(label_ids).index(0)] < VESSEL_BACKGROUND_BELOW


def measure(frame: np.ndarray, vessel: np.ndarray, polygon: Sequence[Sequence[float]],
            mm_per_px: float | None) -> dict[str, Any]:
    """The QCA values of the lesion outlined by `polygon`; all None when no vessel runs
    through it (the lesion is still reported, with its segment and confidence)."""
    lesion = polygon_mask(np.asarray(polygon), frame.shape).astype(bool)
    try:
        return measure_lesion(frame, vessel, lesion, mm_per_px).to_dict()
    except NoVesselError:
        return unmeasured()


def study_findings(frames: Sequence[dict[str, Any]],
                   dominance: str = "unknown") -> list[dict[str, Any]]:
    """A study's findings, one per segment, from the findings of each frame read (analysis.json's
    `findings` entries: `path`, `frame`, `view`, `side` and their `stenoses`), in SYNTAX order.

    Each entry has the segment ("12b"), its label and side, and the QCA values
    (`MEASUREMENT_KEYS`) and `confidence` of one lesion: of all the lesions measured on the
    segment, the one the stenosis model is most confident of (`measured_in` names its frame).
    `views` lists every frame showing a lesion on the segment, with that frame's % and
    confidence. Not the worst % of all views: where another vessel crosses the lesion or the
    view foreshortens it, QCA errs by about 20 points, mostly upward (docs/qca.md), so the
    worst view is the least reliable one. A lesion that could not be measured in any view
    keeps its segment with null QCA values.

    Lesions are numbered as the study's `dominance` (`angioscribe.dominance`) numbers them: a
    PDA the model named #4 on a left injection of a left-dominant study is #15; the entry's
    `renamed_from` keeps the model's name (null when unchanged).

    `view_agreement` is the share of the views showing the segment (its SYNTAX region kept, or
    a lesion on it) that show the lesion: a lesion seen in one of four views of its segment
    is weaker evidence than one every view shows.
    """
    seen: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    showing: dict[str, int] = {}
    for frame in frames:
        for number in _segments_shown(frame, dominance):
            showing[number] = showing.get(number, 0) + 1
        per_segment: dict[str, dict[str, Any]] = {}
        for named in (lesion for lesion in frame["stenoses"] if lesion["segment"]):
            number = name_for_dominance(named["segment"], frame.get("side"), dominance)
            lesion = {**named, "segment": number,
                      "renamed_from": named["segment"] if number != named["segment"] else None}
            known = per_segment.get(number)
            if known is None or _trust(lesion) > _trust(known):
                per_segment[number] = lesion
        for segment, lesion in per_segment.items():
            seen.setdefault(segment, []).append((frame, lesion))
    order = list(SEGMENTS)
    return [_segment_finding(segment, seen[segment], showing[segment])
            for segment in sorted(seen, key=order.index)]


def _segments_shown(frame: dict[str, Any], dominance: str) -> set[str]:
    """The segments a frame shows, numbered for the study's dominance: its kept SYNTAX regions
    and the segments its lesions are named after."""
    named = {*frame.get("segments", []),
             *(lesion["segment"] for lesion in frame["stenoses"] if lesion["segment"])}
    return {name_for_dominance(number, frame.get("side"), dominance) for number in named}


def _segment_finding(segment: str, views: list[tuple[dict[str, Any], dict[str, Any]]],
                     showing: int) -> dict[str, Any]:
    """One segment's study finding from the (frame, lesion) pairs that show its lesion, and
    how many views show the segment at all."""
    frame, lesion = max(views, key=lambda pair: _trust(pair[1]))
    return {
        "segment": segment,
        "label": label_en(segment),
        "laterality": SEGMENTS[segment].laterality,
        "renamed_from": lesion["renamed_from"],
        **{key: lesion[key] for key in MEASUREMENT_KEYS},
        **{key: lesion.get(key, not_assessed()[key]) for key in ASSESSMENT_KEYS},
        "adjacent_segments": lesion.get("adjacent_segments"),
        "confidence": lesion["confidence"],
        "measured_in": {"path": frame["path"], "frame": frame["frame"], "view": frame["view"]},
        "views": [{"path": f["path"], "frame": f["frame"], "view": f["view"],
                   "stenosis_percent": one["stenosis_percent"], "confidence": one["confidence"]}
                  for f, one in views],
        "views_showing_segment": showing,
        "view_agreement": round(len(views) / showing, 3),
    }


def _trust(lesion: dict[str, Any]) -> tuple[bool, float]:
    """Which lesion record of a segment to report: a measured one first, then the one the
    stenosis model is most confident of."""
    return lesion["stenosis_percent"] is not None, lesion["confidence"]


def _segment_channels(label_ids: Sequence[int], laterality: str | None) -> dict[int, int]:
    """Probability channel -> ARCADE id of the segments a lesion may be named after: those of
    the frame's side when it is known (an LCA frame shows no RCA segment)."""
    return {channel: arcade_id for channel, arcade_id in enumerate(label_ids)
            if arcade_id > 0 and (laterality is None
                                  or segment_by_arcade_id(arcade_id).laterality == laterality)}


def _assign(probabilities: np.ndarray, channels: dict[int, int],
            region: Region) -> StenosisFinding:
    lesion = polygon_mask(region.polygon, probabilities.shape[1:])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEAREST_SEGMENT_RADIUS + 1,) * 2)
    near = cv2.dilate(lesion, kernel).astype(bool)
    segment_id, support = _most_probable_segment(probabilities, channels, lesion.astype(bool))
    if segment_id is None:
        segment_id, support = _most_probable_segment(probabilities, channels, near)
    segment = segment_by_arcade_id(segment_id) if segment_id is not None else None
    return StenosisFinding(
        segment=segment.number if segment else None,
        laterality=segment.laterality if segment else None,
        confidence=region.score,
        support=support,
        bbox=region.bbox,
        polygon=region.polygon.tolist(),
        adjacent_segments=_adjacent_segments(probabilities, channels, near),
    )


def _adjacent_segments(probabilities: np.ndarray, channels: dict[int, int],
                       near: np.ndarray) -> list[str]:
    """The segments the model sees around a lesion (`near`: the lesion widened by
    NEAREST_SEGMENT_RADIUS), in SYNTAX order: where a junction's segments meet, the lesion sits
    at a branch point."""
    confident = probabilities[:, near][list(channels)] > 0.5
    ids = [arcade_id for arcade_id, pixels in zip(channels.values(), confident.sum(axis=1),
                                                  strict=True) if pixels >= ADJACENT_MIN_PIXELS]
    numbers = {segment_by_arcade_id(arcade_id).number for arcade_id in ids}
    return [number for number in SEGMENTS if number in numbers]


def _most_probable_segment(probabilities: np.ndarray, channels: dict[int, int],
                           where: np.ndarray) -> tuple[int | None, float]:
    """The segment with the most probability over `where`, and its share of the segments'
    probability there; None when the pixels are mostly background (off every vessel)."""
    if not where.any() or not channels:
        return None, 0.0
    mass = probabilities[:, where][list(channels)].astype(np.float64).sum(axis=1)
    if mass.sum() < MIN_VESSEL_PROBABILITY * where.sum():
        return None, 0.0
    best = int(mass.argmax())
    return list(channels.values())[best], float(mass[best] / mass.sum())


def plot_findings(image: np.ndarray, segments: Sequence[Region], findings: FrameFindings,
                  path: str | Path, title: str = "") -> Path:
    """PNG overlay: segments filled in colour and numbered, stenoses outlined in red with their
    segment, QCA % diameter stenosis and the model's confidence, on the grey frame at its own
    resolution, under `title` and above a legend that says what the numbers mean."""
    height, width = image.shape
    fig = plt.figure(figsize=(width / 100, (height + TITLE_PX) / 100), dpi=100)
    axes = fig.add_axes((0, 0, 1, height / (height + TITLE_PX)))
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
        axes.text(x + w, y, stenosis.caption, color="red", fontsize=8, ha="left", va="bottom",
                  weight="bold")
    axes.set_axis_off()
    fig.suptitle(title, fontsize=9, y=1 - 4 / (height + TITLE_PX))
    legend = [Patch(color=colours(0), alpha=0.45, label="SYNTAX segment (number)"),
              Line2D([], [], color="red", lw=1.5,
                     label="lesion: segment, % diameter stenosis (QCA), model confidence")]
    axes.legend(handles=legend, loc="lower left", fontsize=7, framealpha=0.7)
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

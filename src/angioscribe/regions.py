"""From class probability maps to the regions (polygons) the ARCADE metric and findings read.

The official metric shapes these rules (see evaluate/arcade_metric.py):
- syntax: only the first polygon per class counts, and ONE predicted class that the image does
  not show zeroes the whole image. So each class gets at most one polygon (its largest
  connected piece), only one coronary side is kept per image, and a class is reported only when
  its confidence clears a per-class threshold chosen on validation data.
- stenosis: each lesion is one polygon (one connected component, long ones cut into pieces of
  a lesion's length); specks below a minimum area and low-confidence blobs are dropped, since
  every extra prediction adds a zero to the mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import Polygon

from angioscribe.anatomy import ARCADE_STENOSIS_ID, arcade_categories, segment_by_arcade_id


@dataclass(frozen=True)
class Region:
    """One predicted region: a class, its outline (N, 2) in pixel (x, y), confidence, size."""

    category_id: int
    polygon: np.ndarray
    score: float
    area: float

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """COCO box (x, y, width, height) around the polygon."""
        x_min, y_min = self.polygon.min(axis=0)
        x_max, y_max = self.polygon.max(axis=0)
        return float(x_min), float(y_min), float(x_max - x_min), float(y_max - y_min)

    def to_coco(self, image_id: int, annotation_id: int) -> dict[str, Any]:
        return {
            "id": annotation_id,
            "image_id": image_id,
            "category_id": self.category_id,
            "segmentation": [np.round(self.polygon, 2).ravel().tolist()],
            "area": self.area,
            "bbox": [round(v, 2) for v in self.bbox],
            "iscrowd": 0,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class SyntaxRules:
    """Which segment classes to report. `min_score` is the default confidence threshold,
    `class_min_score` overrides it per ARCADE id (tuned on val). `background_threshold` sets
    vessel width: a pixel is background only if its background probability reaches it (None:
    plain arg-max)."""

    min_score: float = 0.5
    class_min_score: dict[int, float] = field(default_factory=dict)
    min_area: int = 30
    one_side: bool = True
    background_threshold: float | None = None

    def threshold(self, category_id: int) -> float:
        return self.class_min_score.get(category_id, self.min_score)

    def to_dict(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "min_area": self.min_area,
                "one_side": self.one_side, "background_threshold": self.background_threshold,
                "class_min_score": {str(k): v for k, v in self.class_min_score.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyntaxRules:
        return cls(min_score=float(data.get("min_score", 0.5)),
                   class_min_score={int(k): float(v)
                                    for k, v in data.get("class_min_score", {}).items()},
                   min_area=int(data.get("min_area", 30)),
                   one_side=bool(data.get("one_side", True)),
                   background_threshold=data.get("background_threshold"))


@dataclass(frozen=True)
class StenosisRules:
    """Lesion pixels are those with probability >= `pixel_threshold`; a connected stretch longer
    than `max_length` px along the vessel is cut into round(length / max_length) pieces of equal
    length (None: never cut); a piece is reported when its area >= `min_area` and its mean
    probability >= `min_score`, at most `max_lesions` per frame (the most confident; None = no
    cap). The cap exists because the metric averages over predictions: a frame rarely shows more
    than two or three lesions, and each doubtful extra one lowers the frame's score. The cut
    exists because ARCADE's annotators split a long diseased stretch into consecutive lesions
    that the network paints as one blob, and the metric matches each polygon to one lesion.
    A model with a lesion-centre class (`stenosis-seg-centres`) can say where to cut: with
    `centre_threshold`, a blob holding several centres (pieces of centre probability >= it) is
    first split between them, each pixel to the nearest (`split_at_centres`)."""

    pixel_threshold: float = 0.5
    min_area: int = 20
    min_score: float = 0.5
    max_lesions: int | None = None
    max_length: float | None = None
    centre_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StenosisRules:
        """Rules from artifact metadata; keys an older artifact lacks keep their defaults."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def segment_labels(probabilities: np.ndarray, background_threshold: float | None = None
                   ) -> np.ndarray:
    """(H, W) uint8 class map. With `background_threshold`, a pixel is background where the
    background probability reaches it, otherwise its most likely segment class. Below 0.5 this
    thins vessels: the Dice-trained model paints them wider than ARCADE's outlines (val F1
    +0.016 at 0.3 vs plain arg-max, epoch 10), so the width is tuned on val."""
    if background_threshold is None:
        return np.argmax(probabilities, axis=0).astype(np.uint8)
    segments = np.argmax(probabilities[1:], axis=0).astype(np.uint8) + 1
    segments[probabilities[0] >= background_threshold] = 0
    return segments


def syntax_candidates(probabilities: np.ndarray, background_threshold: float | None = None,
                      min_area: int = 1) -> list[Region]:
    """Every segment class's largest connected piece of the class map (`segment_labels`),
    scored by its mean probability, before any threshold (thresholds are tuned on these).

    Each class is processed inside its bounding box (one `find_objects` pass finds them all):
    a segment covers a few percent of the frame, so this is ~10x cheaper than full-frame masks.
    """
    labels = segment_labels(probabilities, background_threshold)
    regions = []
    for category_id, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        piece = largest_component(labels[box] == category_id)
        area = int(piece.sum())
        polygon = mask_polygon(piece)
        if area < min_area or polygon is None:
            continue
        offset = np.array([box[1].start, box[0].start], dtype=np.float64)
        score = float(probabilities[category_id][box][piece].mean())
        regions.append(Region(category_id, polygon + offset, score, float(area)))
    return regions


def select_syntax(candidates: list[Region], rules: SyntaxRules) -> list[Region]:
    """Apply the one-side rule, then the per-class confidence and area thresholds."""
    if rules.one_side:
        candidates = dominant_side(candidates)
    return [region for region in candidates
            if region.score >= rules.threshold(region.category_id)
            and region.area >= rules.min_area]


def syntax_regions(probabilities: np.ndarray, rules: SyntaxRules) -> list[Region]:
    """At most one polygon per SYNTAX class, one coronary side, confident classes only."""
    return select_syntax(syntax_candidates(probabilities, rules.background_threshold), rules)


def dominant_side(candidates: list[Region]) -> list[Region]:
    """Keep the side (LCA/RCA) with more confident area: an image shows one injection, and a
    wrong-side class would zero the image's score."""
    weight = {"LCA": 0.0, "RCA": 0.0}
    for region in candidates:
        weight[segment_by_arcade_id(region.category_id).laterality] += region.score * region.area
    side = max(weight, key=weight.__getitem__)
    return [r for r in candidates if segment_by_arcade_id(r.category_id).laterality == side]


def stenosis_regions(probabilities: np.ndarray, rules: StenosisRules) -> list[Region]:
    """One polygon per lesion (a connected component, or a piece of a long one), confident and
    large enough, most confident first."""
    lesion_probability = probabilities[1:].sum(axis=0)  # a centre is lesion too
    lesion = lesion_probability >= rules.pixel_threshold
    _, components = cv2.connectedComponents(lesion.astype(np.uint8), connectivity=8)
    centres = _centre_pieces(probabilities, rules.centre_threshold)
    regions = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        offset = np.array([box[1].start, box[0].start], dtype=np.float64)
        blob = components[box] == index
        parts = [blob] if centres is None else split_at_centres(blob, centres[box])
        for piece in (piece for part in parts for piece in lesion_pieces(part, rules.max_length)):
            area = int(piece.sum())
            if area < rules.min_area:
                continue
            score = float(lesion_probability[box][piece].mean())
            polygon = mask_polygon(piece)
            if score >= rules.min_score and polygon is not None:
                regions.append(Region(ARCADE_STENOSIS_ID, polygon + offset, score, float(area)))
    return sorted(regions, key=lambda region: region.score, reverse=True)[:rules.max_lesions]


# Class index of a lesion's centre, in stenosis masks made with centres and in the
# probabilities of a model with a centre class (`stenosis-seg-centres`).
CENTRE_CLASS = 2


def has_centre_class(probabilities: np.ndarray) -> bool:
    """Whether (C, H, W) stenosis probabilities come from a model with a centre class."""
    return probabilities.shape[0] > CENTRE_CLASS


def _centre_pieces(probabilities: np.ndarray, threshold: float | None) -> np.ndarray | None:
    """Connected pieces (1..K, 0 elsewhere) of the centre class above `threshold`; None when
    the rules or the model have no centres."""
    if threshold is None or not has_centre_class(probabilities):
        return None
    return cv2.connectedComponents((probabilities[CENTRE_CLASS] >= threshold).astype(np.uint8),
                                   connectivity=8)[1]


def split_at_centres(blob: np.ndarray, centres: np.ndarray) -> list[np.ndarray]:
    """A lesion blob split between the centre pieces (labels in `centres`, 0 = none) it
    overlaps, each pixel to the nearest; whole when it overlaps fewer than two."""
    inside = np.unique(centres[blob])
    inside = inside[inside > 0]
    if len(inside) < 2:
        return [blob]
    own = np.where(np.isin(centres, inside) & blob, centres, 0)
    _, (rows, columns) = ndimage.distance_transform_edt(own == 0, return_indices=True)
    nearest = own[rows, columns]
    return [largest_component(blob & (nearest == label)) for label in inside]


def lesion_pieces(component: np.ndarray, max_length: float | None) -> list[np.ndarray]:
    """A connected lesion mask, or equal-length pieces of it along the vessel when it is longer
    than `max_length` (its length: the largest path distance inside the mask from one end)."""
    if max_length is None:
        return [component]
    ys, xs = np.nonzero(component)
    # A path through n pixels is at most sqrt(2) (n - 1) long: small blobs need no search.
    if 2**0.5 * (len(ys) - 1) < 1.5 * max_length:
        return [component]
    along = distance_from_one_end(ys, xs, component.shape)
    n_pieces = int(round(float(along.max()) / max_length))
    if n_pieces <= 1:
        return [component]
    piece_of_pixel = np.minimum((along / along.max() * n_pieces).astype(int), n_pieces - 1)
    pieces = []
    for piece_index in range(n_pieces):
        piece = np.zeros(component.shape, bool)
        chosen = piece_of_pixel == piece_index
        piece[ys[chosen], xs[chosen]] = True
        pieces.append(largest_component(piece))
    return pieces


_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 2**0.5), (1, -1, 2**0.5))


def distance_from_one_end(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Path distance (8-connected steps, diagonals sqrt 2) inside a connected pixel set from one
    of its ends, per pixel. The end is the pixel farthest from an arbitrary first one: for an
    elongated blob such as a vessel stretch, that is one of its tips."""
    index = np.full(shape[:2], -1)
    index[ys, xs] = np.arange(len(ys))
    rows, columns, lengths = [], [], []
    for dy, dx, step in _STEPS:
        ny, nx = ys + dy, xs + dx
        inside = (ny < shape[0]) & (nx >= 0) & (nx < shape[1])
        neighbour = np.full(len(ys), -1)
        neighbour[inside] = index[ny[inside], nx[inside]]
        linked = neighbour >= 0
        rows.append(np.nonzero(linked)[0])
        columns.append(neighbour[linked])
        lengths.append(np.full(int(linked.sum()), step))
    graph = coo_matrix((np.concatenate(lengths), (np.concatenate(rows), np.concatenate(columns))),
                       shape=(len(ys), len(ys))).tocsr()
    from_first = dijkstra(graph, directed=False, indices=0)
    return dijkstra(graph, directed=False, indices=int(np.argmax(from_first)))


def largest_component(mask: np.ndarray) -> np.ndarray:
    count, components, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 2:
        return mask.astype(bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return components == largest


def polygon_mask(polygon: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) uint8, 1 inside an (N, 2) pixel polygon: the inverse of `mask_polygon`."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon.reshape(-1, 2)).astype(np.int32)], 1)
    return mask


def mask_polygon(mask: np.ndarray) -> np.ndarray | None:
    """Outer outline (N, 2) of a mask's largest piece, or None if it has no area.

    The outline runs through boundary pixel centres, half a pixel inside the mask's edge,
    while training masks include every pixel an annotation's outline touches; the two offsets
    roughly cancel, so the polygon's area matches the annotation's. Holes are filled: a COCO
    polygon has none, and the metric reads only the outline.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    if len(outline) < 3 or Polygon(outline).area <= 0:
        return _pixel_box(outline)
    return outline


def _pixel_box(points: np.ndarray) -> np.ndarray:
    """A thin line or single pixel has no polygon area; use the box of its pixels instead."""
    x_min, y_min = points.min(axis=0) - 0.5
    x_max, y_max = points.max(axis=0) + 0.5
    return np.array([[x_min, y_min], [x_max, y_min], [x_max, y_max], [x_min, y_max]])


def coco_results(images: list[dict[str, Any]], regions: list[list[Region]]) -> dict[str, Any]:
    """A COCO results file: `images` (file_name, id, width, height), ARCADE `categories`, and
    one annotation per region with its polygon in pixels and score.

    All 26 ARCADE categories are listed for either task, as in ARCADE's own files: the official
    scorer asserts that prediction and ground truth list the same number of categories."""
    annotations = []
    for image, image_regions in zip(images, regions, strict=True):
        for region in image_regions:
            annotations.append(region.to_coco(int(image["id"]), len(annotations) + 1))
    return {"images": [dict(image) for image in images],
            "categories": arcade_categories(), "annotations": annotations}

"""The ARCADE challenge's F1, computed the way the organisers' scoring code computes it.

Re-implemented (not copied) from the challenge's evaluation containers, cmctec/ARCADE
`evaluation/evaluate_segmentation.py` and `evaluation/evaluate_stenosis.py`, so that a number this
project reports is comparable with the challenge leaderboard. The rules, including the quirks that
make it differ from a textbook Dice, are listed in docs/metrics.md; in short:

- images are matched by `file_name`; every ground-truth image counts, one with no prediction
  scores 0; only each annotation's FIRST polygon is read; the prediction `score` is ignored;
- polygon F1 = 2PR/(P+R) on shapely areas (= Dice); a polygon pair shapely cannot intersect is
  retried after `buffer(0)`, and scores 0 if that fails too;
- syntax: per image, each ground-truth class scores the F1 of its first GT polygon with the first
  predicted polygon of that class (0 if none); any predicted class absent from the image's GT
  zeroes the whole image; image score = mean over its GT classes;
- stenosis: each prediction scores its best F1 against any GT polygon, zeros pad the list up to
  the number of GT polygons (extra predictions are not penalised); image score = mean;
- final F1 = mean over images.

Where the official scripts would stop with an exception instead of a number, this module either
raises an `InputError` saying why (malformed files) or takes the documented way out (images
without ground truth are left out and listed in `ArcadeScore.unscored`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from shapely.errors import GEOSException
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from angioscribe.anatomy import ARCADE_STENOSIS_ID
from angioscribe.data.arcade import TASKS, Task, read_coco
from angioscribe.errors import InputError

# The COCO categories each task's files may use: the 25 SYNTAX segments, or the stenosis.
TASK_CATEGORIES: dict[str, frozenset[int]] = {
    "syntax": frozenset(range(1, ARCADE_STENOSIS_ID)),
    "stenosis": frozenset({ARCADE_STENOSIS_ID}),
}

# (category_id, first polygon as the flat [x1, y1, x2, y2, ...] list COCO stores)
_Annotation = tuple[int, list[float]]


@dataclass(frozen=True)
class ArcadeScore:
    """The official F1 and what it was made of.

    `per_image` maps each scored ground-truth file name to its image score. `unscored` lists
    ground-truth images without annotations (the official code fails on them: the mean of an
    empty list), `unmatched_predictions` prediction images whose file name no ground-truth
    image has (the official code ignores them; usually a sign of renamed files).
    """

    f1: float
    per_image: dict[str, float]
    unscored: tuple[str, ...] = ()
    unmatched_predictions: tuple[str, ...] = ()


def arcade_f1_files(gt_path: str | Path, pred_path: str | Path, task: Task) -> ArcadeScore:
    """`arcade_f1` on two COCO files; errors name the file at fault."""
    return arcade_f1(
        read_coco(gt_path),
        read_coco(pred_path),
        task,
        gt_source=str(gt_path),
        pred_source=str(pred_path),
    )


def arcade_f1(
    gt_coco: dict[str, Any],
    pred_coco: dict[str, Any],
    task: Task,
    *,
    gt_source: str = "ground truth",
    pred_source: str = "predictions",
) -> ArcadeScore:
    """The official ARCADE F1 of `pred_coco` against `gt_coco` for `task` (syntax|stenosis)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    gt = annotations_by_file_name(gt_coco, gt_source, unique_names=True)
    pred = annotations_by_file_name(pred_coco, pred_source, unique_names=False)
    check_task_categories(gt, task, gt_source)
    check_task_categories(pred, task, pred_source)
    score_image = _syntax_image_f1 if task == "syntax" else _stenosis_image_f1
    per_image = {
        name: score_image(annotations, pred.get(name, []))
        for name, annotations in gt.items()
        if annotations
    }
    if not per_image:
        raise InputError(gt_source, "no ground-truth image has annotations; nothing to score")
    return ArcadeScore(
        f1=float(statistics.mean(per_image.values())),
        per_image=per_image,
        unscored=tuple(name for name, annotations in gt.items() if not annotations),
        unmatched_predictions=tuple(name for name in pred if name not in gt),
    )


def check_task_categories(
    annotations: dict[str, list[_Annotation]], task: str, source: str
) -> None:
    """Refuse a file annotated for another task: scored as this one, a stenosis file gives a
    believable but meaningless syntax F1 (and the reverse), so it must not get a number."""
    used = {category for image in annotations.values() for category, _ in image}
    foreign = sorted(used - TASK_CATEGORIES[task])
    if not foreign:
        return
    other = next((name for name, allowed in TASK_CATEGORIES.items() if used <= allowed), None)
    looks_like = f"; this looks like a {other} file" if other and other != task else ""
    allowed = "1..25 (SYNTAX segments)" if task == "syntax" else f"{ARCADE_STENOSIS_ID} (stenosis)"
    raise InputError(
        source,
        f"annotations use category {', '.join(map(str, foreign[:5]))}, but the {task} task "
        f"uses only {allowed}{looks_like}",
    )


def _syntax_image_f1(gt: list[_Annotation], pred: list[_Annotation]) -> float:
    """One image of the segmentation task, as evaluate_segmentation.py scores it."""
    if syntax_false_classes(gt, pred):
        return 0.0
    return float(statistics.mean(syntax_class_f1(gt, pred).values()))


def syntax_false_classes(gt: list[_Annotation], pred: list[_Annotation]) -> set[int]:
    """Predicted classes the image's ground truth lacks: any one zeroes the image."""
    return {category for category, _ in pred} - {category for category, _ in gt}


def syntax_class_f1(gt: list[_Annotation], pred: list[_Annotation]) -> dict[int, float]:
    """Each ground-truth class's F1: its first GT polygon against the first predicted polygon
    of the class (0 if none), before any zeroing for false classes."""
    first_pred: dict[int, list[float]] = {}
    for category, polygon in pred:
        first_pred.setdefault(category, polygon)
    class_scores: dict[int, float] = {}
    for category, polygon in gt:
        if category not in class_scores:
            predicted = first_pred.get(category)
            class_scores[category] = (
                0.0 if predicted is None else polygon_f1(polygon, predicted, always_repair=True)
            )
    return class_scores


def _stenosis_image_f1(gt: list[_Annotation], pred: list[_Annotation]) -> float:
    """One image of the stenosis task, as evaluate_stenosis.py scores it."""
    return stenosis_image_score(stenosis_f1_matrix(gt, pred))


def stenosis_image_score(matrix: np.ndarray) -> float:
    """The image score from its (predictions, lesions) F1 matrix: each prediction's best F1
    over the lesions, zeros padding the list up to the number of lesions, then the mean."""
    scores = list(matrix.max(axis=1, initial=0.0))
    scores += [0.0] * (matrix.shape[1] - len(scores))
    return float(statistics.mean(scores))


def stenosis_f1_matrix(gt: list[_Annotation], pred: list[_Annotation]) -> np.ndarray:
    """(predictions, lesions) polygon F1 of every pair.

    The official script passes (prediction, ground truth) into the parameters it names
    (gt_mask, pred_mask); the F1 is symmetric, and keeping the order keeps shapely's
    floating-point rounding identical too.
    """
    return np.array(
        [[polygon_f1(predicted, truth, always_repair=False) for _, truth in gt]
         for _, predicted in pred],
        dtype=np.float64,
    ).reshape(len(pred), len(gt))


def polygon_f1(
    gt_mask: Sequence[float], pred_mask: Sequence[float], *, always_repair: bool
) -> float:
    """F1 (= Dice) of two flat COCO polygons by shapely area, with the official repair rules.

    The intersection is taken as the official scripts take it, prediction first. If shapely
    refuses it (self-intersecting polygon, fewer than 3 points), both polygons are repaired with
    `buffer(0)` and intersected again; if that fails too the pair scores 0. False positive and
    false negative areas are each polygon minus the intersection: on the repaired polygons when a
    repair was needed, and always on repaired polygons for the syntax task (`always_repair`,
    the segmentation script's later version), on the raw polygons for stenosis. Where the
    stenosis script's raw difference would raise, the repaired polygons are used instead of
    stopping. The official scripts' MultiPolygon clause never fires (it compares the type's name
    with a module path shapely has never used), so the whole intersection area counts.
    """
    repaired = False
    try:
        prediction, truth = Polygon(_points(pred_mask)), Polygon(_points(gt_mask))
        overlap = prediction.intersection(truth)
    except (GEOSException, ValueError):
        try:
            prediction, truth = (
                Polygon(_points(pred_mask)).buffer(0),
                Polygon(_points(gt_mask)).buffer(0),
            )
            overlap = prediction.intersection(truth)
        except (GEOSException, ValueError):
            return 0.0
        repaired = True
    tp = overlap.area
    if tp == 0:
        return 0.0
    try:
        fp, fn = _outside_areas(prediction, truth, overlap, repair=always_repair or repaired)
    except GEOSException:
        fp, fn = _outside_areas(prediction, truth, overlap, repair=True)
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return 2 * (precision * recall) / (precision + recall)


def _outside_areas(
    prediction: BaseGeometry, truth: BaseGeometry, overlap: BaseGeometry, repair: bool
) -> tuple[float, float]:
    if repair:
        prediction, truth = prediction.buffer(0), truth.buffer(0)
    return (prediction - overlap).area, (truth - overlap).area


def _points(flat: Sequence[float]) -> np.ndarray:
    return np.asarray(flat, dtype=np.float64).reshape(-1, 2)


def annotations_by_file_name(
    coco: dict[str, Any], source: str, unique_names: bool
) -> dict[str, list[_Annotation]]:
    """Each image's (category, first polygon) list in file order, keyed by file name.

    Every listed image gets an entry, with or without annotations, in the file's image order.
    """
    file_names: dict[Any, str] = {}
    grouped: dict[str, list[_Annotation]] = {}
    for image in coco.get("images", []):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise InputError(source, f"image entry without id/file_name: {image!r}")
        name = str(image["file_name"])
        if unique_names and name in grouped:
            raise InputError(
                source,
                f"file_name {name} is listed twice; images are matched by "
                f"file name, so it must be unique",
            )
        file_names[image["id"]] = name
        grouped.setdefault(name, [])
    for annotation in coco.get("annotations", []):
        image_id = annotation.get("image_id")
        if image_id not in file_names:
            raise InputError(
                source,
                f"annotation {annotation.get('id')} refers to image id "
                f"{image_id!r}, which 'images' does not list",
            )
        grouped[file_names[image_id]].append(
            (int(annotation["category_id"]), _first_polygon(annotation, source))
        )
    return grouped


def _first_polygon(annotation: dict[str, Any], source: str) -> list[float]:
    segmentation = annotation.get("segmentation")
    polygon = segmentation[0] if isinstance(segmentation, list) and segmentation else None
    if (
        not isinstance(polygon, list)
        or len(polygon) % 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in polygon)
    ):
        raise InputError(
            source,
            f"annotation {annotation.get('id')}: segmentation must be a list "
            f"of polygons, the first a flat list of x, y numbers",
        )
    return polygon

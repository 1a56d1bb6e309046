"""Choose post-processing thresholds on validation data with the official ARCADE metric.

The metric's per-image rules are replayed exactly from the polygon F1 of each candidate region
(computed once with the official polygon F1), so thousands of threshold settings can be tried in
seconds; the chosen setting is then confirmed with the full official scorer by the caller.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from angioscribe.data.arcade import ArcadeImage
from angioscribe.evaluate.arcade_metric import polygon_f1
from angioscribe.regions import (
    Region,
    StenosisRules,
    SyntaxRules,
    select_syntax,
    stenosis_regions,
    syntax_candidates,
)

SCORE_GRID = tuple(np.round(np.arange(0.2, 0.96, 0.025), 3))
AREA_GRID = (0, 25, 50, 100, 200)
LESION_CAP_GRID = (None, 1, 2, 3, 4)
BACKGROUND_GRID = (None, 0.2, 0.3, 0.4)
# Up to 0.9: lesion probability spreads along the vessel, so blobs cut at 0.5 are about twice
# the annotated lesion's area (median 1900 vs 800 px on val at epoch 10); a high cut trims them.
PIXEL_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
# Lesion length (px along the vessel) above which a blob is cut (`StenosisRules.max_length`);
# annotated lesions are a few vessel diameters long, 20-60 px in 512 px frames.
LENGTH_GRID = (None, 60, 80, 100, 120, 150, 200)


def syntax_f1(candidates: Sequence[list[Region]], truth: Sequence[ArcadeImage],
              rules: SyntaxRules, overlap: Sequence[dict[int, float]] | None = None) -> float:
    """The official syntax F1 of the regions `rules` keep from each image's candidates."""
    overlap = overlap if overlap is not None else syntax_overlap(candidates, truth)
    scores = []
    for image_candidates, image, image_overlap in zip(candidates, truth, overlap, strict=True):
        gt_classes = {a.category_id for a in image.annotations}
        kept = {region.category_id for region in select_syntax(image_candidates, rules)}
        if kept - gt_classes:
            scores.append(0.0)
        else:
            scores.append(statistics.mean(image_overlap[c] if c in kept else 0.0
                                          for c in gt_classes))
    return float(np.mean(scores))


def syntax_overlap(candidates: Sequence[list[Region]],
                   truth: Sequence[ArcadeImage]) -> list[dict[int, float]]:
    """Per image, the official polygon F1 of each candidate with its class's first GT polygon."""
    table = []
    for image_candidates, image in zip(candidates, truth, strict=True):
        first_gt: dict[int, np.ndarray] = {}
        for annotation in image.annotations:
            first_gt.setdefault(annotation.category_id, annotation.polygon)
        table.append({
            region.category_id: polygon_f1(first_gt[region.category_id].ravel().tolist(),
                                           region.polygon.ravel().tolist(), always_repair=True)
            for region in image_candidates if region.category_id in first_gt
        })
    return table


def tune_syntax_rules(candidates: Sequence[list[Region]], truth: Sequence[ArcadeImage],
                      per_class: bool = True, min_gain: float = 1e-3) -> tuple[SyntaxRules, float]:
    """Best global (min_score, min_area), then per-class thresholds by coordinate ascent.

    A per-class change is kept only if it gains at least `min_gain` (a fifth of one image of
    200), so rare classes don't get thresholds fitted to a single validation image.
    """
    overlap = syntax_overlap(candidates, truth)

    def score(rules: SyntaxRules) -> float:
        return syntax_f1(candidates, truth, rules, overlap)

    best = max((SyntaxRules(min_score=s, min_area=a) for s in SCORE_GRID for a in AREA_GRID),
               key=score)
    best_f1 = score(best)
    if not per_class:
        return best, best_f1
    classes = sorted({region.category_id for image in candidates for region in image})
    for _ in range(2):
        for category in classes:
            for threshold in (*SCORE_GRID, 1.01):
                trial = replace(best, class_min_score={**best.class_min_score,
                                                       category: float(threshold)})
                trial_f1 = score(trial)
                if trial_f1 >= best_f1 + min_gain:
                    best, best_f1 = trial, trial_f1
    return best, best_f1


def tune_syntax(probabilities: Sequence[np.ndarray], truth: Sequence[ArcadeImage]
                ) -> tuple[SyntaxRules, float]:
    """`tune_syntax_rules` for each vessel width (`SyntaxRules.background_threshold`), best
    kept. Costs a minute per width for 200 val frames."""
    best, best_f1 = SyntaxRules(), -1.0
    for background_threshold in BACKGROUND_GRID:
        candidates = [syntax_candidates(p, background_threshold) for p in probabilities]
        rules, f1 = tune_syntax_rules(candidates, truth)
        if f1 > best_f1:
            best, best_f1 = replace(rules, background_threshold=background_threshold), f1
    return best, best_f1


@dataclass(frozen=True)
class StenosisGrid:
    """Every stenosis setting of the grid scored on every frame: (settings, frames) image F1,
    NaN for a frame without lesions (the metric leaves those out).

    Kept whole so that tuning on some frames and scoring others costs no new outlines:
    `cross_validated_f1` is the estimate free of tuning on the frames it reports.
    """

    settings: tuple[StenosisRules, ...]
    scores: np.ndarray

    def best(self, frames: np.ndarray | None = None) -> tuple[StenosisRules, float]:
        """The setting with the best mean over `frames` (indices; all by default) and that
        mean; the first such setting of the grid on ties."""
        index, mean = self._best_index(frames)
        return self.settings[index], mean

    def _best_index(self, frames: np.ndarray | None) -> tuple[int, float]:
        scores = self.scores if frames is None else self.scores[:, frames]
        means = np.nanmean(scores, axis=1)
        index = int(np.argmax(means))
        return index, float(means[index])

    @property
    def scored_frames(self) -> int:
        """How many frames the metric scores (those with lesions)."""
        return len(self._scored())

    def _scored(self) -> np.ndarray:
        return np.flatnonzero(~np.isnan(self.scores[0]))

    def cross_validated_f1(self, folds: int = 5, seed: int = 0) -> float:
        """Mean F1 of each frame under the setting tuned on the other folds (frames dealt
        into `folds` by a seeded shuffle)."""
        scored = self._scored()
        if not 2 <= folds <= len(scored):
            raise ValueError(f"{len(scored)} frames with lesions cannot make {folds} folds")
        shuffled = np.random.default_rng(seed).permutation(scored)
        held_out = []
        for fold in np.array_split(shuffled, folds):
            index, _ = self._best_index(np.setdiff1d(scored, fold))
            held_out.extend(self.scores[index, fold])
        return float(np.mean(held_out))


def stenosis_grid(probabilities: Sequence[np.ndarray], truth: Sequence[ArcadeImage],
                  lengths: Sequence[float | None] = LENGTH_GRID) -> StenosisGrid:
    """Grid over pixel threshold, cut length, minimum area, minimum mean probability and
    lesion cap. Each (pixel threshold, length) pair outlines and scores the regions once."""
    settings, rows = [], []
    for pixel_threshold, max_length in product(PIXEL_GRID, lengths):
        loose = StenosisRules(pixel_threshold=pixel_threshold, min_area=1, min_score=0.0,
                              max_length=max_length)
        regions = [stenosis_regions(p, loose) for p in probabilities]
        matched = [_best_stenosis_f1(image_regions, image)
                   for image_regions, image in zip(regions, truth, strict=True)]
        for min_area, min_score, cap in product(AREA_GRID, SCORE_GRID, LESION_CAP_GRID):
            rules = replace(loose, min_area=max(min_area, 1), min_score=float(min_score),
                            max_lesions=cap)
            settings.append(rules)
            rows.append(np.array(_stenosis_image_f1(regions, matched, truth, rules)))
    return StenosisGrid(tuple(settings), np.stack(rows))


def tune_stenosis_rules(probabilities: Sequence[np.ndarray], truth: Sequence[ArcadeImage],
                        lengths: Sequence[float | None] = LENGTH_GRID
                        ) -> tuple[StenosisRules, float]:
    """The best setting of `stenosis_grid` on all frames and its F1."""
    return stenosis_grid(probabilities, truth, lengths).best()


def _best_stenosis_f1(regions: list[Region], image: ArcadeImage) -> list[float]:
    polygons = [a.polygon.ravel().tolist() for a in image.annotations]
    return [max((polygon_f1(region.polygon.ravel().tolist(), gt, always_repair=False)
                 for gt in polygons), default=0.0) for region in regions]


def _stenosis_image_f1(regions: Sequence[list[Region]], matched: Sequence[list[float]],
                       truth: Sequence[ArcadeImage], rules: StenosisRules) -> list[float]:
    """Each frame's metric score under `rules` (NaN without lesions), replayed from the
    regions' best polygon F1."""
    scores = []
    for image_regions, image_matched, image in zip(regions, matched, truth, strict=True):
        kept = [f1 for region, f1 in zip(image_regions, image_matched, strict=True)
                if region.area >= rules.min_area and region.score >= rules.min_score]
        kept = kept[:rules.max_lesions]  # regions come most confident first
        n_gt = len(image.annotations)
        kept += [0.0] * (n_gt - len(kept))
        scores.append(float(np.mean(kept)) if n_gt else np.nan)
    return scores

"""Choose post-processing thresholds on validation data with the official ARCADE metric.

The metric's per-image rules are replayed exactly from the polygon F1 of each candidate region
(computed once with the official polygon F1), so thousands of threshold settings can be tried in
seconds; the chosen setting is then confirmed with the full official scorer by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from angioscribe.data.arcade import ArcadeImage
from angioscribe.evaluate.arcade_metric import polygon_f1
from angioscribe.regions import (
    Region,
    StenosisRules,
    SyntaxRules,
    dominant_side,
    has_centre_class,
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
# Centre-class thresholds (`StenosisRules.centre_threshold`) for models with a centre class.
CENTRE_GRID = (None, 0.3, 0.5)


@dataclass(frozen=True)
class SyntaxTable:
    """Every frame's syntax candidates (side rule applied) as flat arrays, each with the
    official polygon F1 against its class's first annotated polygon.

    The metric's image rules then reduce to array sums: a threshold setting is scored in
    microseconds instead of milliseconds, so the per-class search runs in about a second and
    can be repeated per fold (`SyntaxTuning.cross_validated_f1`).
    """

    frame: np.ndarray  # (candidates,) index of the frame
    category: np.ndarray  # ARCADE id
    score: np.ndarray  # mean probability
    area: np.ndarray
    overlap: np.ndarray  # F1 with the class's first annotated polygon; 0 if not annotated
    false_class: np.ndarray  # the frame does not show this class: keeping it zeroes the frame
    classes_shown: np.ndarray  # (frames,) distinct annotated classes; 0: frame not scored

    def image_f1(self, rules: SyntaxRules) -> np.ndarray:
        """Each frame's metric score under `rules` (NaN for a frame without annotations)."""
        thresholds = np.full(len(self.score), rules.min_score)
        for category, threshold in rules.class_min_score.items():
            thresholds[self.category == category] = threshold
        kept = (self.score >= thresholds) & (self.area >= rules.min_area)
        frames = len(self.classes_shown)
        matched = np.bincount(self.frame[kept], weights=self.overlap[kept], minlength=frames)
        zeroed = np.bincount(self.frame[kept & self.false_class], minlength=frames) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = matched / np.where(self.classes_shown > 0, self.classes_shown, np.nan)
        return np.where(zeroed & (self.classes_shown > 0), 0.0, scores)

    def f1(self, rules: SyntaxRules, frames: np.ndarray | None = None) -> float:
        """The official syntax F1 of `rules` over `frames` (indices; all by default)."""
        scores = self.image_f1(rules)
        return float(np.nanmean(scores if frames is None else scores[frames]))


def syntax_table(candidates: Sequence[list[Region]], truth: Sequence[ArcadeImage],
                 one_side: bool = True) -> SyntaxTable:
    """The `SyntaxTable` of each frame's candidates (`syntax_candidates`) against its labels;
    with `one_side` only the dominant coronary side's candidates, as `select_syntax` keeps."""
    rows = []  # frame, category, score, area, overlap, false class
    classes_shown = []
    for index, (image_candidates, image) in enumerate(zip(candidates, truth, strict=True)):
        first_gt: dict[int, np.ndarray] = {}
        for annotation in image.annotations:
            first_gt.setdefault(annotation.category_id, annotation.polygon)
        classes_shown.append(len(first_gt))
        for region in dominant_side(image_candidates) if one_side else image_candidates:
            truth_polygon = first_gt.get(region.category_id)
            overlap = 0.0 if truth_polygon is None else polygon_f1(
                truth_polygon.ravel().tolist(), region.polygon.ravel().tolist(),
                always_repair=True)
            rows.append((index, region.category_id, region.score, region.area, overlap,
                         truth_polygon is None))
    columns = np.array(rows, dtype=np.float64).reshape(-1, 6).T
    return SyntaxTable(frame=columns[0].astype(np.int64), category=columns[1].astype(np.int64),
                       score=columns[2], area=columns[3], overlap=columns[4],
                       false_class=columns[5].astype(bool),
                       classes_shown=np.array(classes_shown, dtype=np.int64))


def tune_syntax_rules(table: SyntaxTable, frames: np.ndarray | None = None,
                      per_class: bool = True, min_gain: float = 1e-3
                      ) -> tuple[SyntaxRules, float]:
    """Best global (min_score, min_area) over `frames`, then per-class thresholds by
    coordinate ascent.

    A per-class change is kept only if it gains at least `min_gain` (a fifth of one image of
    200), so rare classes don't get thresholds fitted to a single validation image.
    """
    best = max((SyntaxRules(min_score=s, min_area=a) for s in SCORE_GRID for a in AREA_GRID),
               key=lambda rules: table.f1(rules, frames))
    best_f1 = table.f1(best, frames)
    if not per_class:
        return best, best_f1
    for _ in range(2):
        for category in np.unique(table.category).tolist():
            for threshold in (*SCORE_GRID, 1.01):
                trial = replace(best, class_min_score={**best.class_min_score,
                                                       category: float(threshold)})
                trial_f1 = table.f1(trial, frames)
                if trial_f1 >= best_f1 + min_gain:
                    best, best_f1 = trial, trial_f1
    return best, best_f1


@dataclass(frozen=True)
class SyntaxTuning:
    """One `SyntaxTable` per vessel width (`SyntaxRules.background_threshold`): the whole
    syntax search, kept so that it can be repeated on some frames and scored on others."""

    tables: dict[float | None, SyntaxTable]
    per_class: bool = True

    def best(self, frames: np.ndarray | None = None) -> tuple[SyntaxRules, float]:
        """`tune_syntax_rules` for each width over `frames`, the best kept (the first width
        on ties)."""
        best, best_f1 = SyntaxRules(), -1.0
        for background_threshold, table in self.tables.items():
            rules, f1 = tune_syntax_rules(table, frames, per_class=self.per_class)
            if f1 > best_f1:
                best, best_f1 = replace(rules, background_threshold=background_threshold), f1
        return best, best_f1

    @property
    def scored_frames(self) -> int:
        """How many frames the metric scores (those with annotations)."""
        return len(self._scored())

    def _scored(self) -> np.ndarray:
        return np.flatnonzero(next(iter(self.tables.values())).classes_shown > 0)

    def cross_validated_f1(self, folds: int = 5, seed: int = 0) -> float:
        """Mean F1 of each frame under the rules tuned on the other folds (the whole search,
        vessel width included, repeated per fold)."""

        def held_out(tuning_frames: np.ndarray, fold: np.ndarray) -> np.ndarray:
            rules, _ = self.best(tuning_frames)
            return self.tables[rules.background_threshold].image_f1(rules)[fold]

        return cross_validated_mean(self._scored(), folds, seed, held_out)


def syntax_tuning(probabilities: Sequence[np.ndarray], truth: Sequence[ArcadeImage]
                  ) -> SyntaxTuning:
    """The candidates of every width in `BACKGROUND_GRID`, outlined and scored once (7 s per
    width for 200 val frames; the search over the tables then takes a fraction of a second)."""
    return SyntaxTuning({
        width: syntax_table([syntax_candidates(p, width) for p in probabilities], truth)
        for width in BACKGROUND_GRID})


def choose_syntax_tuning(tuning: SyntaxTuning, folds: int, seed: int = 0) -> SyntaxTuning:
    """The search with per-class thresholds if they beat one threshold for all classes on
    frames they were not tuned on, else the one-threshold search.

    Per-class thresholds always gain on the frames they are tuned on, but a rare class's
    threshold is fitted to a handful of frames: for the shipped syntax-seg they raised the
    val-tuned F1 from 0.461 to 0.479 and lowered the cross-validated one (5 folds, seed 0)
    from 0.461 to 0.449.
    """
    each_class, one = replace(tuning, per_class=True), replace(tuning, per_class=False)
    if each_class.cross_validated_f1(folds, seed) > one.cross_validated_f1(folds, seed):
        return each_class
    return one


def cross_validated_mean(scored: np.ndarray, folds: int, seed: int,
                         held_out: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> float:
    """Mean of `held_out(tuning_frames, fold)` over `folds` folds of the `scored` frames
    (dealt by a seeded shuffle): each fold scored under what the other folds chose."""
    if not 2 <= folds <= len(scored):
        raise ValueError(f"{len(scored)} scored frames cannot make {folds} folds")
    shuffled = np.random.default_rng(seed).permutation(scored)
    scores = [held_out(np.setdiff1d(scored, fold), fold)
              for fold in np.array_split(shuffled, folds)]
    return float(np.mean(np.concatenate(scores)))


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

        def held_out(tuning_frames: np.ndarray, fold: np.ndarray) -> np.ndarray:
            return self.scores[self._best_index(tuning_frames)[0], fold]

        return cross_validated_mean(self._scored(), folds, seed, held_out)


def stenosis_grid(probabilities: Sequence[np.ndarray], truth: Sequence[ArcadeImage],
                  lengths: Sequence[float | None] = LENGTH_GRID) -> StenosisGrid:
    """Grid over pixel threshold, cut length, minimum area, minimum mean probability and
    lesion cap (and centre threshold, for models with a centre class). Each (pixel threshold,
    length, centre) triple outlines and scores the regions once."""
    settings, rows = [], []
    with_centres = bool(probabilities) and has_centre_class(probabilities[0])
    centre_grid = CENTRE_GRID if with_centres else (None,)
    for pixel_threshold, max_length, centre in product(PIXEL_GRID, lengths, centre_grid):
        loose = StenosisRules(pixel_threshold=pixel_threshold, min_area=1, min_score=0.0,
                              max_length=max_length, centre_threshold=centre)
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

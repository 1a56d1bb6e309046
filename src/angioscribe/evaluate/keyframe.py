"""Key-frame classifier metrics: CAG-VLM's three figures of merit, accuracy, CIs.

CAG-VLM reports one six-class confusion matrix and three weighted F1 scores read from it:
six-class (laterality x quality), laterality (LCA vs RCA, whatever the quality) and key frame
(LCA_better / RCA_better / everything else). They are computed here from integer class indices
(`keyframes.classes.CLASSES` order), with percentile bootstrap 95 % CIs over frames or, when
groups are given, over videos/patients (frames of one video are not independent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from angioscribe.evaluate.confusion import confusion
from angioscribe.keyframes.classes import CLASSES, KEYFRAME_CLASSES, LATERALITIES

N_CLASSES = len(CLASSES)


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Per-class F1 averaged with weights = true class frequency (sklearn's "weighted")."""
    matrix = confusion(y_true, y_pred, n_classes)
    tp = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(0), matrix.sum(1)
    denominator = predicted + actual
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float((f1 * actual).sum() / max(actual.sum(), 1))


def to_laterality(indices: np.ndarray) -> np.ndarray:
    """0 LCA, 1 RCA from six-class indices."""
    return np.asarray(indices) // (N_CLASSES // len(LATERALITIES))


def to_keyframe(indices: np.ndarray) -> np.ndarray:
    """0 LCA_better, 1 RCA_better, 2 others from six-class indices."""
    lookup = np.array([KEYFRAME_CLASSES.index(c) if c in KEYFRAME_CLASSES else 2 for c in CLASSES])
    return lookup[np.asarray(indices)]


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "f1_6class": lambda t, p: weighted_f1(t, p, N_CLASSES),
    "f1_laterality": lambda t, p: weighted_f1(to_laterality(t), to_laterality(p), 2),
    "f1_keyframe": lambda t, p: weighted_f1(to_keyframe(t), to_keyframe(p), 3),
    "accuracy_6class": lambda t, p: float(np.mean(np.asarray(t) == np.asarray(p))),
    "accuracy_laterality": lambda t, p: float(np.mean(to_laterality(t) == to_laterality(p))),
}


def keyframe_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """All figures of merit as point estimates."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    return {name: metric(true, pred) for name, metric in METRICS.items()}


def keyframe_report(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    groups: Sequence[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float | str]]:
    """{metric: {"value", "ci_low", "ci_high", "ci_unit"}} with bootstrap 95 % CIs.

    With `groups` of at least two distinct values, whole groups (videos, source images) are
    resampled; otherwise frames are, and `ci_unit` says so: the CI of a single video's frames
    describes that video only.
    """
    from angioscribe.evaluate.bootstrap import bootstrap_ci

    true, pred = np.asarray(y_true), np.asarray(y_pred)
    by_group = groups is not None and len(set(groups)) >= 2
    unit = "group" if by_group else "frame"
    report: dict[str, dict[str, float | str]] = {}
    for name, metric in METRICS.items():
        interval = bootstrap_ci((true, pred), metric, n=n_resamples, seed=seed,
                                groups=groups if by_group else None)
        report[name] = {"value": interval.estimate, "ci_low": interval.low,
                        "ci_high": interval.high, "ci_unit": unit}
    report["n"] = {"value": float(len(true))}
    return report

"""Per-segment, per-finding metrics of study predictions, with patient-level bootstrap CIs.

Binary findings (>= 70 % stenosis, CTO, thrombus, calcification): AUROC, AUPRC, and sensitivity
and specificity at the Youden threshold, over all (study, segment) pairs whose label is known
and per segment where it has positives. Stenosis %: MAE and Pearson r. CIs resample patients
(`angioscribe.evaluate.bootstrap`), as a patient's studies and segments are not independent.

Serial studies of one patient (a baseline and its follow-ups): the cosine distance between
their study embeddings against the distances between studies of different patients, and
whether more progression (the summed change of the segments' stenosis %) moves the embedding
further (Spearman's rho over the serial pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import pearsonr, rankdata, spearmanr

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.video.study_model import BINARY_FINDINGS, FINDINGS


def auroc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties half); NaN with one class only."""
    truth = np.asarray(truth, bool)
    positives, negatives = truth.sum(), (~truth).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def auprc(truth: np.ndarray, score: np.ndarray) -> float:
    """Average precision: precision at each positive, in order of falling score."""
    truth = np.asarray(truth, bool)
    if not truth.any():
        return float("nan")
    order = np.argsort(-np.asarray(score), kind="stable")
    hits = truth[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def roc_curve(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) at every distinct score."""
    truth = np.asarray(truth, bool)
    thresholds = np.unique(score)[::-1]
    above = np.asarray(score)[None, :] >= thresholds[:, None]
    tpr = (above & truth).sum(1) / max(truth.sum(), 1)
    fpr = (above & ~truth).sum(1) / max((~truth).sum(), 1)
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thresholds]


def youden(truth: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """The threshold maximising sensitivity + specificity - 1, and both at it."""
    fpr, tpr, thresholds = roc_curve(truth, score)
    best = int(np.argmax(tpr - fpr))
    return {"threshold": float(thresholds[best]), "sensitivity": float(tpr[best]),
            "specificity": float(1 - fpr[best])}


def binary_metrics(truth: np.ndarray, score: np.ndarray, groups: np.ndarray,
                   n_boot: int) -> dict[str, Any]:
    record: dict[str, Any] = {"n": int(len(truth)), "positives": int(np.sum(truth))}
    if record["positives"] == 0 or record["positives"] == record["n"]:
        return record
    for name, statistic in (("auroc", auroc), ("auprc", auprc)):
        interval = bootstrap_ci((truth, score), statistic, n=n_boot, groups=groups)
        record[name] = {"estimate": interval.estimate, "low": interval.low,
                        "high": interval.high}
    return record | youden(truth, score)


def mean_absolute_error(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(truth) - np.asarray(predicted))))


def pearson_r(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Pearson's r; NaN where either side is constant (a bootstrap resample can be)."""
    if np.std(truth) == 0 or np.std(predicted) == 0:
        return float("nan")
    return float(pearsonr(truth, predicted)[0])


def percent_metrics(truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray,
                    n_boot: int) -> dict[str, Any]:
    interval = bootstrap_ci((truth, predicted), mean_absolute_error, n=n_boot, groups=groups)
    return {"n": int(len(truth)),
            "mae": {"estimate": interval.estimate, "low": interval.low, "high": interval.high},
            "pearson_r": pearson_r(truth, predicted)}


def study_metrics(predictions: np.ndarray, labels: np.ndarray, patients: list[str],
                  n_boot: int = 1000) -> dict[str, Any]:
    """Metrics of (S, 18, 5) predictions (stenosis %, then probabilities) against (S, 18, 5)
    labels (NaN unknown): pooled over (study, segment) pairs and per segment."""
    groups = np.repeat(np.asarray(patients), len(DEEPCORO_SEGMENTS)).reshape(len(patients), -1)
    result: dict[str, Any] = {"studies": len(patients), "patients": len(set(patients))}
    for j, finding in enumerate(FINDINGS):
        known = ~np.isnan(labels[..., j])
        if not known.any():
            continue
        pooled = _finding(finding, labels[..., j][known], predictions[..., j][known],
                          groups[known], n_boot)
        per_segment = {}
        for i, segment in enumerate(DEEPCORO_SEGMENTS):
            rows = known[:, i]
            truth = labels[rows, i, j]
            if finding in BINARY_FINDINGS and not truth.any():
                continue
            if rows.sum() > 1:
                per_segment[segment] = _finding(finding, truth, predictions[rows, i, j],
                                                groups[rows, i], n_boot // 5)
        result[finding] = {"pooled": pooled, "segments": per_segment}
    return result


def _finding(finding: str, truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray,
             n_boot: int) -> dict[str, Any]:
    if finding in BINARY_FINDINGS:
        return binary_metrics(truth >= 0.5, predicted, groups, n_boot)
    return percent_metrics(truth, predicted, groups, n_boot)


def study_embeddings(videos: np.ndarray, counts: list[int]) -> np.ndarray:
    """One unit vector per study: the mean of its videos' unit embeddings (`videos` holds
    each study's `counts[i]` videos in turn), so every view counts once."""
    units = videos / np.maximum(np.linalg.norm(videos, axis=1, keepdims=True), 1e-12)
    means = np.stack([part.mean(0) for part in np.split(units, np.cumsum(counts)[:-1])])
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def serial_distances(embeddings: np.ndarray, studies: list[str], patients: list[str],
                     labels: np.ndarray) -> dict[str, Any]:
    """Cosine distances of the pairs of studies of one patient (with their progression: the
    summed absolute change of stenosis % over the segments known in both) against those of
    pairs of different patients; `same_patient_auroc` is how often a serial pair is closer
    than a pair of different patients (0.5: the embedding does not know the patient)."""
    distance = 1 - embeddings @ embeddings.T
    first, second = np.triu_indices(len(studies), k=1)
    serial = np.asarray(patients)[first] == np.asarray(patients)[second]
    others = distance[first[~serial], second[~serial]]
    pairs = [{"patient": patients[i], "studies": [studies[i], studies[j]],
              "distance": float(distance[i, j]),
              "progression": float(np.nansum(np.abs(labels[j, :, 0] - labels[i, :, 0])))}
             for i, j in zip(first[serial], second[serial], strict=True)]
    report: dict[str, Any] = {"serial_pairs": len(pairs), "other_pairs": int(len(others)),
                              "pairs": pairs}
    if not pairs or not len(others):
        return report
    near = np.array([pair["distance"] for pair in pairs])
    steps = np.array([pair["progression"] for pair in pairs])
    varied = len(pairs) > 2 and np.ptp(steps) > 0 and np.ptp(near) > 0
    rho, p_value = spearmanr(steps, near) if varied else (float("nan"), float("nan"))
    return report | {
        "serial_distance": _spread_of(near), "other_distance": _spread_of(others),
        "same_patient_auroc": auroc(np.r_[np.ones(len(near)), np.zeros(len(others))],
                                    -np.r_[near, others]),
        "progression_spearman": float(rho), "progression_spearman_p": float(p_value)}


def _spread_of(values: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(values)), "mean": float(np.mean(values)),
            "q1": float(np.quantile(values, 0.25)), "q3": float(np.quantile(values, 0.75))}

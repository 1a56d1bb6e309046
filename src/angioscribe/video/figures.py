"""Figures of a video model's evaluation: ROC curves, retrieval curves, an embedding map and
the distances of serial studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from angioscribe.video.evaluate import roc_curve
from angioscribe.video.retrieval import RECALL_AT
from angioscribe.video.study_model import BINARY_FINDINGS, FINDINGS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_figure(predictions: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    """One ROC curve per binary finding, pooled over (study, segment) pairs."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 5))
    for finding in BINARY_FINDINGS:
        j = FINDINGS.index(finding)
        known = ~np.isnan(labels[..., j])
        truth = labels[..., j][known] >= 0.5
        if truth.any() and not truth.all():
            fpr, tpr, _ = roc_curve(truth, predictions[..., j][known])
            axis.plot(fpr, tpr, label=f"{finding} (n+={int(truth.sum())})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", title="Study x segment ROC")
    axis.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def retrieval_figure(retrieval: dict[str, Any], path: Path) -> Path:
    """Recall@k of both directions beside their chance levels."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4))
    for direction, values in retrieval.items():
        name = direction.replace("_", " ")
        line, = axis.plot(RECALL_AT, [values[f"recall@{k}"] for k in RECALL_AT], marker="o",
                          label=name)
        axis.plot(RECALL_AT, [values[f"chance_recall@{k}"] for k in RECALL_AT],
                  linestyle=":", color=line.get_color(), label=f"{name}, chance")
    axis.set(xlabel="k", ylabel="Recall@k", ylim=(0, 1.02), xscale="log",
             title="Retrieval", xticks=RECALL_AT, xticklabels=[str(k) for k in RECALL_AT])
    axis.legend(fontsize=8)
    return _save(figure, path)


def embedding_map(embeddings: np.ndarray, groups: list[str], path: Path) -> Path:
    """The first two principal components of the video embeddings, coloured by group."""
    plt = _pyplot()
    centred = embeddings - embeddings.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    figure, axis = plt.subplots(figsize=(5, 5))
    for group in sorted(set(groups)):
        rows = np.asarray(groups) == group
        axis.scatter(points[rows, 0], points[rows, 1], s=10, label=group)
    axis.set(xlabel="PC 1", ylabel="PC 2", title="Video embeddings")
    axis.legend(fontsize=8)
    return _save(figure, path)


def serial_figure(serial: dict[str, Any], path: Path) -> Path:
    """Each serial pair's embedding distance against its progression, beside the quartiles
    of the distances between different patients' studies."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4))
    pairs = serial["pairs"]
    axis.scatter([p["progression"] for p in pairs], [p["distance"] for p in pairs], s=16,
                 label=f"same patient (n={len(pairs)})")
    if "other_distance" in serial:
        other = serial["other_distance"]
        axis.axhline(other["median"], color="grey", label="different patients, median")
        axis.axhspan(other["q1"], other["q3"], color="grey", alpha=0.2,
                     label="different patients, quartiles")
    axis.set(xlabel="progression (summed stenosis % change)", ylabel="cosine distance",
             title="Serial studies")
    axis.legend(fontsize=8)
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return path

"""Confusion matrices: the count matrix the key-frame F1s are read from, and its PNG figure
(CAG-VLM Fig. 4 for the six key-frame classes; the segment-naming matrix uses the same plot)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SMALL_MATRIX = 6  # up to this many classes every cell shows its count; larger ones only non-zero


def confusion(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
              n_classes: int) -> np.ndarray:
    """(true, predicted) count matrix."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def plot_confusion(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
                   path: str | Path, title: str) -> Path:
    """Confusion matrix as a PNG: counts, with shading normalised per true class so that rare
    classes read as clearly as common ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    matrix = confusion(y_true, y_pred, n)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    scale = max(1.0, n / SMALL_MATRIX) ** 0.6
    figure, axes = plt.subplots(figsize=(6.4 * scale, 5.4 * scale), dpi=120)
    image = axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    small = n <= SMALL_MATRIX
    for i, j in zip(*np.nonzero(np.ones_like(matrix) if small else matrix), strict=True):
        axes.text(j, i, str(matrix[i, j]), ha="center", va="center",
                  color="white" if rows[i, j] > 0.5 else "black", fontsize=9 if small else 6)
    axes.set_xticks(range(n), labels, rotation=35 if small else 90,
                    ha="right" if small else "center")
    axes.set_yticks(range(n), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="fraction of true class")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path

"""Figures of report evaluation, as PNG: score distributions per model (CAG-VLM Figures 5, 6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from angioscribe.evaluate.report_tables import OVERALL, DraftScores, by_model  # noqa: E402


def score_histograms(drafts: Sequence[DraftScores], path: str | Path) -> Path:
    """Figure 6: the clinician's overall score (0-10) per model, one row each, shared axes."""
    models = by_model(d for d in drafts if OVERALL in d.metrics)
    figure, axes = plt.subplots(
        len(models), 1, figsize=(6, 1.8 * len(models) + 0.6), sharex=True, squeeze=False
    )
    for ax, (model, items) in zip(axes[:, 0], models.items(), strict=True):
        scores = np.array([d.metrics[OVERALL] for d in items])
        ax.hist(scores, bins=np.arange(-0.5, 11.5, 1.0), color="tab:blue", edgecolor="white")
        ax.set_title(f"{model} (mean {scores.mean():.2f}, n={len(scores)})", fontsize=9)
        ax.set_ylabel("drafts")
    axes[-1, 0].set_xticks(range(11))
    axes[-1, 0].set_xlabel("overall score (0-10)")
    return _save(figure, path)


def metric_distributions(
    drafts: Sequence[DraftScores], metrics: Sequence[str], path: str | Path
) -> Path:
    """Figure 5: one histogram per model (rows) and metric (columns), e.g. VLScore per embedder."""
    models = by_model(drafts)
    figure, axes = plt.subplots(
        len(models),
        len(metrics),
        squeeze=False,
        sharex=True,
        figsize=(3.2 * len(metrics), 1.8 * len(models) + 0.6),
    )
    for row, (model, items) in enumerate(models.items()):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            values = np.array([d.metrics[metric] for d in items if metric in d.metrics])
            ax.hist(values, bins=np.linspace(0, 1, 21), color="tab:orange", edgecolor="white")
            if row == 0:
                ax.set_title(metric, fontsize=9)
            if col == 0:
                ax.set_ylabel(model, fontsize=8)
            if values.size:
                ax.axvline(values.mean(), color="black", linewidth=1)
    for ax in axes[-1]:
        ax.set_xlabel("score")
    return _save(figure, path)


def _save(figure: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

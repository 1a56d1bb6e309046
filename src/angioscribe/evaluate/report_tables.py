"""Per-model tables for report evaluation: CAG-VLM Table 4 (errors, clinician score) and
Table 3 style metric summaries (VLScore, BLEU-4, ROUGE-L), each with bootstrap 95 % CIs.

Both automatic scoring (`angioscribe evaluate reports`) and the imported blind review
(`angioscribe review import`) produce one `DraftScores` per draft, so both print the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.evaluate.report_errors import ERROR_CATEGORIES

OVERALL = "overall"


@dataclass
class DraftScores:
    """Everything measured about one draft. `group` is the bootstrap resampling unit."""

    model: str
    case_id: str
    group: str
    errors: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    segments: dict[str, int] = field(default_factory=dict)  # SegmentAgreement; none: not scored

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "id": self.case_id,
            "group": self.group,
            "errors": self.errors,
            "metrics": self.metrics,
            "reasons": self.reasons,
            "segments": self.segments,
        }


def by_model(drafts: Iterable[DraftScores]) -> dict[str, list[DraftScores]]:
    """Drafts grouped by model, models in order of first appearance."""
    grouped: dict[str, list[DraftScores]] = {}
    for draft in drafts:
        grouped.setdefault(draft.model, []).append(draft)
    return grouped


def error_table(
    drafts: Sequence[DraftScores], n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Table 4: per model, drafts with at least one error of each category, count and rate.

    The paper counts drafts, not error instances ("vessel numbering wrong in ~70 % of drafts");
    the mean number of instances per draft is kept too. With clinician scores, mean and SD of
    the overall score lead the row, as in the paper.
    """
    rows = []
    for model, items in by_model(drafts).items():
        groups = [d.group for d in items]
        row: dict[str, Any] = {"model": model, "n": len(items)}
        scores = [d.metrics[OVERALL] for d in items if OVERALL in d.metrics]
        if scores:
            row["score_mean"] = float(np.mean(scores))
            row["score_sd"] = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
        for category in ERROR_CATEGORIES:
            counts = np.array([d.errors.get(category, 0) for d in items])
            flagged = (counts > 0).astype(float)
            interval = bootstrap_ci(flagged, n=n_boot, seed=seed, groups=groups)
            row[f"{category}_drafts"] = int(flagged.sum())
            row[f"{category}_rate"] = interval.estimate
            row[f"{category}_ci"] = [interval.low, interval.high]
            row[f"{category}_per_draft"] = float(counts.mean())
        rows.append(row)
    return rows


def metric_table(
    drafts: Sequence[DraftScores], names: Sequence[str], n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per model and metric: mean, SD and the bootstrap CI of the mean (Table 3's layout)."""
    rows = []
    for model, items in by_model(drafts).items():
        for name in names:
            scored = [d for d in items if name in d.metrics]
            if not scored:
                continue
            values = np.array([d.metrics[name] for d in scored])
            interval = bootstrap_ci(values, n=n_boot, seed=seed, groups=[d.group for d in scored])
            rows.append(
                {
                    "model": model,
                    "metric": name,
                    "n": len(values),
                    "mean": interval.estimate,
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                    "ci": [interval.low, interval.high],
                }
            )
    return rows


def naming_table(
    drafts: Sequence[DraftScores], n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per model: the stenosed segments the drafts name against the truth's, as precision,
    recall and F1 pooled over drafts (the counts added up, not averaged per draft, so a draft
    with nothing to name weighs nothing), and side errors; bootstrap 95 % CIs over cases (or
    patients) as everywhere else."""
    rows = []
    for model, items in by_model(drafts).items():
        scored = [d for d in items if d.segments]
        if not scored:
            continue
        counts = tuple(
            np.array([d.segments[key] for d in scored])
            for key in ("true_positive", "false_positive", "false_negative")
        )
        groups = [d.group for d in scored]
        row: dict[str, Any] = {"model": model, "n": len(scored)}
        for name, statistic in (("precision", _precision), ("recall", _recall), ("f1", _f1)):
            interval = bootstrap_ci(counts, statistic, n=n_boot, seed=seed, groups=groups)
            row[name] = interval.estimate
            row[f"{name}_ci"] = [interval.low, interval.high]
        sides = np.array([d.segments["side_error"] for d in scored], dtype=float)
        interval = bootstrap_ci(sides, n=n_boot, seed=seed, groups=groups)
        row["side_errors"] = int(sides.sum())
        row["side_rate"] = interval.estimate
        row["side_ci"] = [interval.low, interval.high]
        rows.append(row)
    return rows


def _ratio(hits: float, total: float) -> float:
    return hits / total if total else float("nan")


def _precision(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    return _ratio(tp.sum(), tp.sum() + fp.sum())


def _recall(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    return _ratio(tp.sum(), tp.sum() + fn.sum())


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    return _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())

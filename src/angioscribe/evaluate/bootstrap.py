"""Percentile bootstrap confidence intervals, resampling cases or whole patients.

One implementation for every metric the project reports with a 95 % CI (report error rates,
VLScore, classification metrics). When a patient contributes several cases (several key frames,
several studies), resampling cases would treat correlated cases as independent and give too
narrow an interval; pass `groups` to resample patients instead, as DeepCORO-CLIP does.

    bootstrap_ci(scores)                                   # CI of a mean
    bootstrap_ci((y_true, y_pred), f1_score, groups=ids)   # CI of a metric, by patient
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A statistic on the full sample and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_ci(
    values: Any,
    statistic: Callable[..., float] = np.mean,
    n: int = 1000,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
    level: float = 0.95,
) -> Interval:
    """Percentile bootstrap CI of `statistic(values)`.

    `values` is one array-like, or a tuple of aligned array-likes (e.g. `(y_true, y_pred)`)
    resampled together and passed to `statistic` as positional arguments. The first axis is
    the sample. With `groups` (one label per sample), whole groups are drawn with replacement
    and all their samples kept. Replicates where the statistic is undefined (NaN, e.g. an AUROC
    on a one-class resample) are left out of the percentiles.
    """
    arrays = (
        tuple(np.asarray(v) for v in values) if isinstance(values, tuple) else (np.asarray(values),)
    )
    size = len(arrays[0])
    if size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if any(len(a) != size for a in arrays):
        raise ValueError(
            f"arrays to resample together differ in length: {[len(a) for a in arrays]}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    draw = _resampler(size, groups, np.random.default_rng(seed))
    replicates = np.array(
        [statistic(*(a[rows] for a in arrays)) for rows in (draw() for _ in range(n))], dtype=float
    )
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return Interval(float(statistic(*arrays)), float(low), float(high), level)


def _resampler(
    size: int, groups: Sequence[Any] | None, rng: np.random.Generator
) -> Callable[[], np.ndarray]:
    """A function drawing one bootstrap sample's indices: samples, or whole groups of them."""
    if groups is None:
        return lambda: rng.integers(size, size=size)
    labels = list(groups)
    if len(labels) != size:
        raise ValueError(f"groups has {len(labels)} labels for {size} values")
    index: dict[Any, list[int]] = {}
    for row, label in enumerate(labels):
        index.setdefault(label, []).append(row)
    members = [np.array(rows) for rows in index.values()]
    return lambda: np.concatenate(
        [members[k] for k in rng.integers(len(members), size=len(members))]
    )

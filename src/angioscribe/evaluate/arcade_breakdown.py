"""Where an ARCADE F1 is lost: the official score broken down the way its rules spend it.

The official F1 is one mean over images; improving it means knowing which rule costs what.

- stenosis, by the image's number of annotated lesions: its image F1, predictions, false ones
  (overlapping no lesion: each adds a zero to the image's mean), missed lesions (touched by no
  prediction: each pads the mean with a zero), and how well the matched ones fit (median F1);
- syntax, by segment class: the class F1 where the class is annotated (before zeroing), the
  images where it was missed, and the images where it was predicted but not annotated (each
  zeroes its whole image).

Every number comes from the same per-pair rules `arcade_metric` scores with, so the rows add
up to the official F1 (the `all` row of the stenosis table is that F1).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from angioscribe.anatomy import label_en, segment_by_arcade_id  # noqa: E402
from angioscribe.data.arcade import Task  # noqa: E402
from angioscribe.evaluate.arcade_metric import (  # noqa: E402
    annotations_by_file_name,
    stenosis_f1_matrix,
    stenosis_image_score,
    syntax_class_f1,
    syntax_false_classes,
)

STENOSIS_COLUMNS = ("lesions", "images", "f1", "preds", "false_preds", "missed", "matched_f1")
SYNTAX_COLUMNS = ("segment", "images", "f1", "missed", "false_images")
# Images with this many annotated lesions or more share one row (they are few).
MOST_LESIONS = 5


def arcade_breakdown(gt_coco: dict[str, Any], pred_coco: dict[str, Any],
                     task: Task) -> list[dict[str, Any]]:
    """Rows of the task's breakdown table (columns: STENOSIS_COLUMNS or SYNTAX_COLUMNS)."""
    gt = annotations_by_file_name(gt_coco, "ground truth", unique_names=True)
    pred = annotations_by_file_name(pred_coco, "predictions", unique_names=False)
    pairs = [(annotations, pred.get(name, [])) for name, annotations in gt.items() if annotations]
    return stenosis_breakdown(pairs) if task == "stenosis" else syntax_breakdown(pairs)


def stenosis_breakdown(pairs: list[tuple[list, list]]) -> list[dict[str, Any]]:
    """One row per number of annotated lesions (1, 2, ..., `MOST_LESIONS`+), then `all`."""
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    for truth, predicted in pairs:
        matrix = stenosis_f1_matrix(truth, predicted)
        key = str(len(truth)) if len(truth) < MOST_LESIONS else f"{MOST_LESIONS}+"
        groups[key].append(matrix)
        groups["all"].append(matrix)
    order = sorted((key for key in groups if key != "all"), key=lambda k: int(k.rstrip("+")))
    return [_stenosis_row(key, groups[key]) for key in [*order, "all"]]


def _stenosis_row(key: str, matrices: list[np.ndarray]) -> dict[str, Any]:
    best = [m.max(axis=1, initial=0.0) for m in matrices]
    matched = np.concatenate(best)
    matched = matched[matched > 0]
    return {
        "lesions": key,
        "images": len(matrices),
        "f1": statistics.mean(stenosis_image_score(m) for m in matrices),
        "preds": sum(m.shape[0] for m in matrices),
        "false_preds": int(sum((b == 0).sum() for b in best)),
        "missed": int(sum((m.max(axis=0, initial=0.0) == 0).sum() for m in matrices)),
        "matched_f1": float(np.median(matched)) if len(matched) else None,
    }


def syntax_breakdown(pairs: list[tuple[list, list]]) -> list[dict[str, Any]]:
    """One row per segment class that is annotated or predicted, in ARCADE id order."""
    scores: dict[int, list[float]] = defaultdict(list)
    false_images: dict[int, int] = defaultdict(int)
    for truth, predicted in pairs:
        for category, f1 in syntax_class_f1(truth, predicted).items():
            scores[category].append(f1)
        for category in syntax_false_classes(truth, predicted):
            false_images[category] += 1
    return [
        {
            "segment": label_en(segment_by_arcade_id(category).number),
            "images": len(scores[category]),
            "f1": statistics.mean(scores[category]) if scores[category] else None,
            "missed": sum(1 for f1 in scores[category] if f1 == 0),
            "false_images": false_images[category],
        }
        for category in sorted(set(scores) | set(false_images))
    ]


def plot_breakdown(rows: list[dict[str, Any]], task: Task, path: str | Path) -> Path:
    """A bar chart of the breakdown: F1 per group and what the errors are, as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if task == "stenosis":
        rows = [row for row in rows if row["lesions"] != "all"]
        names = [row["lesions"] for row in rows]
        counts = ("false_preds", "missed")
        xlabel = "annotated lesions in the image"
    else:
        names = [row["segment"].split(" ")[0] for row in rows]
        counts = ("missed", "false_images")
        xlabel = "SYNTAX segment"
    x = np.arange(len(rows))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 0.45 * len(rows) + 2), 6),
                                         sharex=True)
    top.bar(x, [row["f1"] or 0.0 for row in rows], color="#4477aa")
    for position, row in zip(x, rows, strict=True):
        top.annotate(f"n={row['images']}", (position, row["f1"] or 0.0), ha="center",
                     va="bottom", fontsize=7)
    top.set_ylabel("F1 (official rules)")
    top.set_ylim(0, 1.05)
    width = 0.4
    for offset, column, colour in ((-width / 2, counts[0], "#cc6677"),
                                   (width / 2, counts[1], "#999933")):
        bottom.bar(x + offset, [row[column] for row in rows], width,
                   label=column.replace("_", " "), color=colour)
    bottom.set_ylabel("count")
    bottom.legend(fontsize=8)
    bottom.set_xticks(x, names, rotation=0 if task == "stenosis" else 60, fontsize=8)
    bottom.set_xlabel(xlabel)
    figure.suptitle(f"ARCADE {task}: where the F1 is lost")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

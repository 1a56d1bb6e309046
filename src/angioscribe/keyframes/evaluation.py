"""Evaluate a key-frame classifier on every labelled set the project has, with CIs and figures.

Sets (docs/keyframes.md): ARCADE syntax val, real frames only (laterality; all "better") and
with the derived bad/other frames (the same seeded set training selected on); each
hand-labelled cine CSV; simulated studies (candidate frames, labels from the simulator's truth).
Each set gets CAG-VLM's three figures of merit and accuracy with bootstrap 95 % CIs
(resampling source images, videos or studies, not frames) and a confusion matrix PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from angioscribe.evaluate.confusion import plot_confusion
from angioscribe.evaluate.keyframe import keyframe_report
from angioscribe.keyframes.classes import CLASSES
from angioscribe.keyframes.classify import KeyframeClassifier, predict_dataset
from angioscribe.keyframes.dataset import (
    KeyframeDataset,
    LabelledFrame,
    arcade_frames,
    describe,
    labelled_cine_frames,
    simulated_frames,
)

VAL_SEED = 1  # the seed training's validation set uses (config seed 0 + 1)


def evaluation_sets(data_root: str | Path, label_files: list[Path], val_limit: int | None = None,
                    sim_folders: list[Path] | None = None) -> dict[str, list[LabelledFrame]]:
    """Named sets of labelled frames: ARCADE val (real, and real + derived), each labelled-cine
    CSV, and each folder of simulated studies."""
    val = arcade_frames(data_root, "val")
    if val_limit is not None:
        keep = set(list(dict.fromkeys(f.group for f in val))[:val_limit])
        val = [f for f in val if f.group in keep]
    sets = {
        "arcade-val-real": [f for f in val if f.quality == "better"],
        "arcade-val-derived": val,
    }
    for path in label_files:
        sets[f"cine-{Path(path).stem}"] = labelled_cine_frames(path, data_root)
    for folder in sim_folders or []:
        sets[f"sim-{Path(folder).name}"] = simulated_frames(folder)
    return sets


def evaluate_classifier(classifier: KeyframeClassifier, sets: dict[str, list[LabelledFrame]],
                        out_dir: str | Path, n_resamples: int = 1000) -> dict[str, Any]:
    """Metrics with CIs per set; writes `confusion-<set>.png` into `out_dir`."""
    out_dir = Path(out_dir)
    results: dict[str, Any] = {"model": classifier.entry.name, "sets": {}}
    for name, frames in sets.items():
        dataset = KeyframeDataset(frames, classifier.preprocess, seed=VAL_SEED)
        predicted = predict_dataset(classifier.model, dataset).argmax(1)
        true = np.array([frame.target for frame in frames])
        groups = [frame.group for frame in frames]
        figure = plot_confusion(true, predicted, CLASSES, out_dir / f"confusion-{name}.png",
                                title=f"{classifier.entry.name} on {name}")
        results["sets"][name] = {
            "data": describe(frames),
            "metrics": keyframe_report(true, predicted, groups, n_resamples=n_resamples),
            "confusion_png": str(figure),
        }
    return results

"""Key-frame classifier training: the task the project's training loop (`train.loop.fit`) runs.

One code path for every registered key-frame architecture (EfficientNet-Lite0 default,
ConvNeXt-Base as in CAG-VLM): the registry entry named in the config decides the network and
its preprocessing; data, loss and selection are the same. Recipe: AdamW with warmup + cosine
(the loop's), class-weighted cross-entropy over the six classes, ARCADE syntax train with derived
bad/other frames plus, if the config names them, simulated studies split by study; model
selection on ARCADE syntax val and the simulated validation studies (see docs/keyframes.md).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from angioscribe.evaluate.keyframe import N_CLASSES, keyframe_metrics
from angioscribe.keyframes.augment import FrameAugment
from angioscribe.keyframes.classify import predict_dataset
from angioscribe.keyframes.dataset import (
    KeyframeDataset,
    LabelledFrame,
    arcade_frames,
    class_counts,
    describe,
    simulated_frames,
)
from angioscribe.models.registry import (
    ModelEntry,
    build_model,
    get_entry,
    save_artifact,
    starting_model,
)
from angioscribe.train.config import TrainConfig
from angioscribe.train.loop import export_checkpoint, load_model_weights
from angioscribe.train.losses import class_weights

EXPORT_REPORT = "export.json"


def keyframe_entry(config: TrainConfig) -> ModelEntry:
    """The registry entry trained by `config`, with its ImageNet source overridden if asked."""
    entry = get_entry(config.model)
    if entry.task != "keyframe":
        raise ValueError(f"model {config.model!r} is a {entry.task} model, not a key-frame model")
    if config.encoder_weights:
        entry = replace(entry, config={**entry.config, "encoder_weights": config.encoder_weights})
    return entry


class KeyframeTraining:
    """Model, seeded training set, class-weighted loss and validation for `train.loop.fit`.

    The best checkpoint maximises the mean of six-class weighted F1 over all val frames (ARCADE
    real and derived, simulated validation studies) and laterality accuracy on the real ARCADE
    val frames, the two things the key-frame step must get right.
    """

    def __init__(self, config: TrainConfig, model: nn.Module | None = None,
                 encoder_pretrained: bool = True) -> None:
        self.config = config
        self.entry = keyframe_entry(config)
        if model is None:
            model = starting_model(self.entry, config.init_from, encoder_pretrained)
        self.model = model
        sim_train, sim_val = simulated_split(config)
        train_frames = _limit(arcade_frames(config.data_root, "train"), config.train_limit)
        train_frames += sim_train
        val_frames = _limit(arcade_frames(config.data_root, "val"), config.val_limit) + sim_val
        self.train_set = KeyframeDataset(train_frames, self.entry.preprocess, FrameAugment(),
                                         seed=config.seed)
        self.val_set = KeyframeDataset(val_frames, self.entry.preprocess, seed=config.seed + 1)
        weights = class_weights(class_counts(train_frames, N_CLASSES), config.class_weight_power)
        self.criterion = nn.CrossEntropyLoss(weight=weights)
        print(json.dumps({"train": describe(train_frames), "val": describe(val_frames)}))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        inputs, targets = batch
        return self.criterion(model(inputs).float(), targets.to(self.criterion.weight.device))

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        probabilities = predict_dataset(model, self.val_set)
        return validation_metrics(self.val_set.frames, probabilities)


def simulated_split(config: TrainConfig) -> tuple[list[LabelledFrame], list[LabelledFrame]]:
    """(train, val) candidate frames of the config's simulated studies, split by study.

    Frames of one study (its views share a patient, heart and image chain) are strongly
    correlated, so a frame-level split would validate on near-copies of training frames.
    """
    if config.sim_dir is None:
        return [], []
    frames = simulated_frames(config.sim_dir)
    studies = sorted({frame.group for frame in frames})[: config.sim_studies]
    val_studies = set(studies[len(studies) - config.sim_val_studies :]
                      if config.sim_val_studies else [])
    train_studies = set(studies) - val_studies
    return ([frame for frame in frames if frame.group in train_studies],
            [frame for frame in frames if frame.group in val_studies])


def validation_metrics(frames: list[LabelledFrame], probabilities: np.ndarray) -> dict[str, float]:
    """Figures of merit on all frames, laterality accuracy on the real ARCADE images (their
    `better` samples), and six-class F1 on the simulated frames if there are any."""
    true = np.array([frame.target for frame in frames])
    predicted = probabilities.argmax(1)
    metrics = keyframe_metrics(true, predicted)
    real = np.array([frame.arcade is not None and frame.quality == "better" for frame in frames])
    real_metrics = keyframe_metrics(true[real], predicted[real])
    metrics["accuracy_laterality_real"] = real_metrics["accuracy_laterality"]
    simulated = np.array([frame.arcade is None for frame in frames])
    if simulated.any():
        sim_metrics = keyframe_metrics(true[simulated], predicted[simulated])
        metrics["f1_6class_sim"] = sim_metrics["f1_6class"]
    metrics["score"] = 0.5 * (metrics["f1_6class"] + metrics["accuracy_laterality_real"])
    return metrics


def _limit(frames: list[LabelledFrame], limit: int | None) -> list[LabelledFrame]:
    """The first `limit` source images' samples (all three of each), for quick runs and tests."""
    if limit is None:
        return frames
    groups = list(dict.fromkeys(frame.group for frame in frames))[:limit]
    keep = set(groups)
    return [frame for frame in frames if frame.group in keep]


def export_best(config: TrainConfig, checkpoint: str | Path | None = None,
                destination: str | Path | None = None) -> dict[str, Any]:
    """best.pt of the run (last.pt when it was never evaluated, or `checkpoint`) -> fp16
    safetensors artifact; export.json keeps the val metrics of the epoch it holds."""
    out_dir = Path(config.out_dir)
    entry = keyframe_entry(config)
    model = build_model(entry, encoder_pretrained=False)
    state = load_model_weights(Path(checkpoint or export_checkpoint(out_dir)), model)
    # A checkpoint's latest evaluation describes its weights: best.pt is saved right after
    # the evaluation that made it best, so that is its last history record too.
    history = state["history"]
    val = history[-1] if history else {}
    artifact = Path(destination or out_dir / f"{entry.name}.safetensors")
    save_artifact(model, entry, artifact)
    report = {"model": entry.name, "artifact": str(artifact), "epoch": state["epoch"], "val": val}
    (out_dir / EXPORT_REPORT).write_text(json.dumps(report, indent=2) + "\n")
    return report

"""The video study model as a task of the project's training loop (`angioscribe.train.loop`).

One loss trains both halves at once: the contrastive loss aligns each video with its text
(negatives gathered from every process), the head loss reads the pooled study per segment
(Huber on stenosis %, BCE on the four binary findings, unknown labels masked). Validation picks
the checkpoint by the mean of the >= 70 % stenosis and CTO AUROCs over (study, segment) pairs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from angioscribe.errors import InputError
from angioscribe.train.config import TrainConfig
from angioscribe.train.loop import export_checkpoint, load_model_weights
from angioscribe.video.config import VideoConfig
from angioscribe.video.data import (
    TEXT_SEPARATOR,
    StudyRecord,
    StudySet,
    read_table,
    read_tables,
)
from angioscribe.video.evaluate import (
    auroc,
    serial_distances,
    study_embeddings,
    study_metrics,
)
from angioscribe.video.features import FeatureCache
from angioscribe.video.losses import clip_loss, gather_across_processes, siglip_loss
from angioscribe.video.retrieval import retrieval_report
from angioscribe.video.study_model import VideoStudyModel, build_video_study_model
from angioscribe.video.zoo import save_video_artifact, video_entry

EVAL_BATCH = 8


def text_key(text: str) -> int:
    """A stable integer naming a text across processes (equal texts, equal keys)."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:15], 16)


def contrastive_loss(outputs: dict[str, torch.Tensor], texts: list[str], valid: torch.Tensor,
                     batch_texts: list[str], config: VideoConfig) -> torch.Tensor:
    """CLIP or SigLIP over this batch's videos and texts plus every other process's. Rows are
    padded to fixed counts (all_gather needs equal shapes) and padding dropped after."""
    videos = outputs["videos"].flatten(0, 1)
    slots = len(videos)
    per_video = [t for study in batch_texts for t in study.split(TEXT_SEPARATOR)]
    video_keys = torch.full((slots,), -1, dtype=torch.long)
    video_keys[valid.flatten()] = torch.tensor([text_key(t) for t in per_video])
    text_keys = torch.full((slots,), -1, dtype=torch.long)
    text_keys[: len(texts)] = torch.tensor([text_key(t) for t in texts])
    text_rows = outputs["texts"].new_zeros(slots, outputs["texts"].shape[-1])
    text_rows[: len(texts)] = outputs["texts"]
    videos, text_rows = gather_across_processes(videos), gather_across_processes(text_rows)
    video_keys, text_keys = (gather_across_processes(k.to(videos.device))
                             for k in (video_keys, text_keys))
    videos, video_keys = videos[video_keys >= 0], video_keys[video_keys >= 0]
    text_rows, text_keys = text_rows[text_keys >= 0], text_keys[text_keys >= 0]
    match = video_keys[:, None] == text_keys[None, :]
    if config.loss == "siglip":
        return siglip_loss(videos, text_rows, match, outputs["logit_scale"],
                           outputs["logit_bias"])
    return clip_loss(videos, text_rows, match, outputs["logit_scale"])


def head_loss(study: torch.Tensor, labels: torch.Tensor, known: torch.Tensor,
              delta: float) -> torch.Tensor:
    """Huber on stenosis % (in fractions, scaled by the delta) + BCE on binary findings,
    each averaged over known labels only."""
    study = study.float()
    percent_known = known[..., 0]
    percent = F.huber_loss(study[..., 0][percent_known] / 100,
                           labels[..., 0][percent_known] / 100, delta=delta / 100,
                           reduction="sum") / (delta / 100) / percent_known.sum().clamp(min=1)
    binary_known = known[..., 1:]
    binary = F.binary_cross_entropy_with_logits(
        study[..., 1:][binary_known], labels[..., 1:][binary_known], reduction="sum"
    ) / binary_known.sum().clamp(min=1)
    return percent + binary


def study_batch_loss(model: nn.Module, batch: dict[str, Any], config: VideoConfig
                     ) -> torch.Tensor:
    """The training loss of one batch of `StudySet` samples."""
    texts = list(dict.fromkeys(t for study in batch["texts"]
                               for t in study.split(TEXT_SEPARATOR)))
    outputs = model(batch["inputs"], batch["valid"], texts)
    loss = config.head_weight * head_loss(outputs["study"], batch["labels"], batch["known"],
                                          config.huber_delta)
    if config.clip_weight:
        loss = loss + config.clip_weight * contrastive_loss(outputs, texts, batch["valid"],
                                                            batch["texts"], config)
    return loss


@torch.no_grad()
def collect(model: VideoStudyModel, dataset: StudySet) -> dict[str, Any]:
    """Predictions (S, 18, 5) as stenosis % and probabilities, per-video embeddings and texts,
    and the unique texts' embeddings, over a whole dataset in order."""
    model.eval()
    studies, videos, video_texts = [], [], []
    for batch in DataLoader(dataset, batch_size=EVAL_BATCH):
        outputs = model(batch["inputs"], batch["valid"])
        study = outputs["study"].float()
        studies.append(torch.cat([study[..., :1], torch.sigmoid(study[..., 1:])], -1))
        videos.append(outputs["videos"][batch["valid"]])
        video_texts += [t for s in batch["texts"] for t in s.split(TEXT_SEPARATOR)]
    texts = list(dict.fromkeys(video_texts))
    text_embeddings = torch.cat([model.text(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    return {"predictions": torch.cat(studies).numpy(), "videos": torch.cat(videos).numpy(),
            "video_texts": video_texts, "texts": texts,
            "text_embeddings": text_embeddings.numpy()}


def evaluation(model: VideoStudyModel, dataset: StudySet, n_boot: int = 1000
               ) -> dict[str, Any]:
    """Study metrics with CIs and retrieval both ways on one dataset."""
    collected = collect(model, dataset)
    labels = np.stack([study.labels for study in dataset.studies])
    return {"findings": study_metrics(collected["predictions"], labels,
                                      [study.patient for study in dataset.studies], n_boot),
            "retrieval": retrieval_report(collected["videos"], collected["video_texts"],
                                          collected["texts"], collected["text_embeddings"])}


def select_split(studies: list[StudyRecord], names: tuple[str, ...], limit: int | None
                 ) -> list[StudyRecord]:
    chosen = [study for study in studies if study.split in names]
    return chosen[:limit] if limit else chosen


def study_set(model: VideoStudyModel, studies: list[StudyRecord],
              feature_cache: str | None) -> StudySet:
    """The studies as model inputs, frame features cached under `feature_cache` when the
    model's encoder trains on cached features (and a folder is given)."""
    settings = model.config
    cache = FeatureCache(feature_cache, settings) if feature_cache and settings.cached_features \
        else None
    return StudySet(studies, model.video.prepare, cache, settings.max_videos)


def warm(model: VideoStudyModel, dataset: StudySet, workers: int) -> None:
    """Fill the dataset's feature cache before use, in `workers` processes when it has one."""
    dataset.warm(getattr(model.video, "frame_encoder", None), workers)


class VideoTraining:
    """Model, cached datasets, loss and validation of the video study model."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.settings = VideoConfig.from_dict(config.model_config)
        if not self.settings.table:
            raise InputError("model_config", "set `table`: the video CSV (or a list of them) to "
                             "train on")
        self.model = build_video_study_model(self.settings.to_dict(), encoder_pretrained=True)
        if config.init_from:
            load_video_weights(self.model, config.init_from)
        studies = read_tables(self.settings.table, self.settings.val_fraction)
        cache = self.settings.feature_cache
        self.train_set = study_set(self.model, select_split(studies, ("train",),
                                                            config.train_limit), cache)
        self.val_set = study_set(self.model, select_split(studies, ("val", "validation"),
                                                          config.val_limit), cache)
        if not len(self.train_set) or not len(self.val_set):
            raise InputError(str(self.settings.table), f"needs train and val studies, has "
                             f"{len(self.train_set)} and {len(self.val_set)}")
        for dataset in (self.train_set, self.val_set):
            warm(self.model, dataset, config.cache_workers)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return study_batch_loss(model, batch, self.settings)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        collected = collect(model, self.val_set)
        labels = np.stack([study.labels for study in self.val_set.studies])
        scores = {}
        for j, name in ((1, "significant_auroc"), (2, "cto_auroc")):
            known = ~np.isnan(labels[..., j])
            scores[name] = auroc(labels[..., j][known] >= 0.5,
                                 collected["predictions"][..., j][known])
        known = ~np.isnan(labels[..., 0])
        scores["stenosis_mae"] = float(np.mean(np.abs(
            labels[..., 0][known] - collected["predictions"][..., 0][known])))
        retrieval = retrieval_report(collected["videos"], collected["video_texts"],
                                     collected["texts"], collected["text_embeddings"])
        scores["text_to_video_recall@10"] = retrieval["text_to_video"]["recall@10"]
        ranked = [v for v in (scores["significant_auroc"], scores["cto_auroc"])
                  if not np.isnan(v)]
        scores["score"] = float(np.mean(ranked)) if ranked else -scores["stenosis_mae"]
        return scores


def load_video_weights(model: VideoStudyModel, path: str | Path) -> None:
    """Trained weights of an artifact or a checkpoint into `model` (frozen parts stay)."""
    from angioscribe.models.registry import read_artifact

    if str(path).endswith(".safetensors"):
        _, state = read_artifact(path)
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    else:
        load_model_weights(path, model)


def export_best(config: TrainConfig, checkpoint: Path | None = None,
                destination: Path | None = None) -> dict[str, Any]:
    """Validation metrics with CIs and the artifact (trained parts only, fp16) + model card."""
    settings = VideoConfig.from_dict(config.model_config)
    out_dir = Path(config.out_dir)
    source = checkpoint or export_checkpoint(out_dir)
    model = build_video_study_model(settings.to_dict(), encoder_pretrained=False)
    state = load_model_weights(source, model)
    studies = read_tables(settings.table, settings.val_fraction)
    val_set = study_set(model, select_split(studies, ("val", "validation"), config.val_limit),
                        settings.feature_cache)
    report = evaluation(model, val_set)
    entry = video_entry(config.model, settings, thresholds=_thresholds(report))
    artifact = save_video_artifact(model, entry, destination or out_dir / f"{config.model}"
                                   ".safetensors")
    summary = {"model": config.model, "artifact": str(artifact), "epoch": state["epoch"],
               "val": report}
    (out_dir / "export.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def _thresholds(report: dict[str, Any]) -> dict[str, float]:
    """Each binary finding's Youden threshold on validation (pooled over segments)."""
    return {finding: values["pooled"]["threshold"]
            for finding, values in report["findings"].items()
            if isinstance(values, dict) and "threshold" in values.get("pooled", {})}


def evaluate_table(model: VideoStudyModel, table: str | Path, splits: tuple[str, ...],
                   feature_cache: str | None, out_dir: Path, n_boot: int = 1000,
                   workers: int = 1) -> dict[str, Any]:
    """`evaluation` of the table's studies in `splits`, with figures written to `out_dir`
    (roc.png, retrieval.png, embeddings.png) and named in the report; `workers` processes
    fill the feature cache first."""
    from angioscribe.video.figures import (
        embedding_map,
        retrieval_figure,
        roc_figure,
        serial_figure,
    )

    settings = model.config
    studies = select_split(read_table(table, settings.val_fraction), splits, None)
    if not studies:
        raise InputError(table, f"no studies in split {', '.join(splits)}")
    dataset = study_set(model, studies, feature_cache)
    if workers > 1:  # one process computes each cine's features as it scores it
        warm(model, dataset, workers)
    collected = collect(model, dataset)
    labels = np.stack([study.labels for study in studies])
    report = {"table": str(table), "splits": list(splits),
              "findings": study_metrics(collected["predictions"], labels,
                                        [study.patient for study in studies], n_boot),
              "retrieval": retrieval_report(collected["videos"], collected["video_texts"],
                                            collected["texts"], collected["text_embeddings"])}
    sides = [video.side or "unknown" for study in studies
             for video in study.videos[: settings.max_videos]]
    counts = [min(len(study.videos), settings.max_videos) for study in studies]
    report["serial"] = serial_distances(study_embeddings(collected["videos"], counts),
                                        [study.study for study in studies],
                                        [study.patient for study in studies], labels)
    report["figures"] = [str(path) for path in (
        roc_figure(collected["predictions"], labels, out_dir / "roc.png"),
        retrieval_figure(report["retrieval"], out_dir / "retrieval.png"),
        embedding_map(collected["videos"], sides, out_dir / "embeddings.png"),
        serial_figure(report["serial"], out_dir / "serial.png"))]
    return report

"""Registry entries of the video study models and their loading.

`video-effnetl0` is the CPU default (frozen ImageNet EfficientNet-Lite0 per frame + temporal
attention, MiniLM text); `video-mvit-biomedbert` is DeepCORO-CLIP's configuration (MViT-v2-S,
BiomedBERT), to train on GPUs. An artifact keeps only the trained weights (the frozen encoders
load from their packages), with its entry, recipe and Youden thresholds in the metadata, so a
path or `hf-hub:` id needs no entry of its own.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.models.registry import (
    HUB_PREFIX,
    METADATA_KEY,
    ModelEntry,
    WeightsMissingError,
    download_from_hub,
    get_entry,
    list_models,
    read_artifact,
    register,
    shipped_weights_dir,
)
from angioscribe.video.config import MVIT, VideoConfig

if TYPE_CHECKING:
    from angioscribe.video.study_model import VideoStudyModel

TASK = "video"
ARCHITECTURE = "angioscribe.video.study_model:build_video_study_model"
BIOMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"


def video_entry(name: str, config: VideoConfig, thresholds: dict[str, float] | None = None,
                description: str = "", weights: str = "", how_to_get: str = "") -> ModelEntry:
    """An entry for a video model; training tables and caches are not part of the model."""
    recipe = replace(config, table=None).to_dict()
    return ModelEntry(name=name, task=TASK, architecture=ARCHITECTURE, config=recipe,
                      labels=DEEPCORO_SEGMENTS, thresholds=dict(thresholds or {}),
                      weights=weights, description=description, how_to_get=how_to_get)


VIDEO_EFFNETL0 = register(video_entry(
    "video-effnetl0", VideoConfig(),
    weights="shipped:video-effnetl0.safetensors",
    description="CPU default: frozen ImageNet EfficientNet-Lite0 per frame (16 frames, 224 px, "
                "features cached), temporal attention, MiniLM text, attention pooling over "
                "<= 10 views, 18 DeepCORO segments x 5 findings. Trained on simulated studies.",
    how_to_get="Train it: angioscribe train video --config configs/video-effnetl0.yaml "
               "(docs/video.md), then pass the .safetensors path.",
))

VIDEO_MVIT_BIOMEDBERT = register(video_entry(
    "video-mvit-biomedbert",
    VideoConfig(video_encoder=MVIT, text_encoder=BIOMEDBERT, train_text=True),
    description="DeepCORO-CLIP's configuration: MViT-v2-S (Kinetics-400) and BiomedBERT, "
                "trained end to end; for GPUs.",
    how_to_get="No weights are shipped: train with angioscribe train video --config "
               "configs/video-mvit-biomedbert.yaml on a GPU (online once for the weights).",
))


def save_video_artifact(model: torch.nn.Module, entry: ModelEntry, path: str | Path) -> Path:
    """fp16 safetensors of the trained weights only, entry in the metadata (a few MB)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().half().contiguous() if value.is_floating_point()
             else value.contiguous() for key, value in model.trained_state().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(entry.to_dict())})
    return path


def artifact_path(source: str) -> Path:
    """The artifact file of a registered name, `hf-hub:` id or `.safetensors` path."""
    if source.startswith(HUB_PREFIX):
        return download_from_hub(source.removeprefix(HUB_PREFIX))
    if source in list_models(TASK):
        entry = get_entry(source)
        kind, _, location = entry.weights.partition(":")
        path = shipped_weights_dir() / location
        if kind != "shipped" or not path.is_file():
            raise WeightsMissingError(f"no weights for {source!r}. {entry.how_to_get}")
        return path
    path = Path(source)
    if path.suffix != ".safetensors" or not path.is_file():
        raise WeightsMissingError(f"{source!r} is neither a video model "
                                  f"({', '.join(list_models(TASK))}), an {HUB_PREFIX} id, nor "
                                  "a .safetensors file")
    return path


def create_video_model(source: str) -> tuple[VideoStudyModel, ModelEntry]:
    """(model in eval mode, entry) of a trained video model: its frozen encoders from their
    packages, its trained weights from the artifact."""
    from angioscribe.video.study_model import build_video_study_model

    entry, state = read_artifact(artifact_path(source))
    model = build_video_study_model(entry.config, encoder_pretrained=False)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()},
                                                strict=False)
    untrained = [key for key in missing if not key.startswith(model.frozen_prefixes())]
    if untrained or unexpected:
        raise WeightsMissingError(f"{source}: artifact does not fit its own entry "
                                  f"(missing {untrained[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), entry

"""Study-level predictions and text queries with a trained video model.

A study is every cine of one examination (`angioscribe.io.read_studies`); up to `max_videos`
of them are encoded (the first ones in file order) and pooled. Each record names the study and
gives, per DeepCORO segment, the SYNTAX segments it covers and the five findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from angioscribe.anatomy import DEEPCORO_SEGMENTS, deepcoro_to_syntax
from angioscribe.cine import Cine
from angioscribe.study import Study
from angioscribe.video.features import FeatureCache
from angioscribe.video.study_model import VideoStudyModel

PROBABILITY_KEYS = ("p_significant", "p_cto", "p_thrombus", "p_calcification")


def cine_inputs(model: VideoStudyModel, cines: list[Cine], cache: FeatureCache | None
                ) -> torch.Tensor:
    """(V, ...) encoder inputs of the cines (features from the cache where one is given)."""
    return torch.stack([model.video.prepare(Path(cine.source), lambda c=cine: c, cache)
                        for cine in cines])


@torch.no_grad()
def predict_study(model: VideoStudyModel, study: Study, path: str,
                  cache: FeatureCache | None = None) -> dict[str, Any]:
    """The record of one study: `study`, `path` and one prediction per DeepCORO segment."""
    cines = study.cines[: model.config.max_videos]
    inputs = cine_inputs(model, cines, cache)[None]
    outputs = model(inputs, torch.ones(1, len(cines), dtype=torch.bool))["study"][0].float()
    percent = outputs[:, 0].numpy()
    probabilities = torch.sigmoid(outputs[:, 1:]).numpy()
    return {"study": study.key, "path": path, "predictions": [
        {"segment": segment, "syntax": list(deepcoro_to_syntax[segment]),
         "stenosis_percent": round(float(percent[i]), 1),
         **{key: round(float(p), 4) for key, p in zip(PROBABILITY_KEYS, probabilities[i],
                                                      strict=True)}}
        for i, segment in enumerate(DEEPCORO_SEGMENTS)]}


@torch.no_grad()
def embed_cines(model: VideoStudyModel, cines: list[Cine], cache: FeatureCache | None = None
                ) -> np.ndarray:
    """(N, D) unit-length video embeddings, a few cines at a time."""
    chunks = [model.video(cine_inputs(model, cines[i : i + 4], cache))
              for i in range(0, len(cines), 4)]
    embeddings = torch.cat(chunks).float()
    return torch.nn.functional.normalize(embeddings, dim=-1).numpy()


@torch.no_grad()
def embed_texts(model: VideoStudyModel, texts: list[str]) -> np.ndarray:
    return torch.nn.functional.normalize(model.text(texts).float(), dim=-1).numpy()

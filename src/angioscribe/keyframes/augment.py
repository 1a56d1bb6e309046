"""Training augmentation for whole-frame key-frame classification.

Three layers, each reproducible from the per-sample `rng` so a resumed run sees the same data:

1. a horizontal mirror with probability `hflip` (default 0.5). The label is the injected artery,
   and mirroring keeps a tree's topology: a mirrored left main still splits into LAD and LCX, a
   mirrored RCA is still one C-shaped vessel with marginal branches. What mirroring does destroy
   are side cues of the projection (catheter course, spine side) that a laterality classifier
   should not lean on anyway, because archives hold mirrored exports (the project's real cine
   source says some of its images are mirrored). Vertical flips stay off: up/down mirrors turn
   cranial into caudal views that no cath lab records with the heart upside down.
2. the project's X-ray augmentation (`train.augment.XrayAugment`): small rotation and zoom of
   the whole frame, gamma, contrast, brightness, blur and quantum noise;
3. TrivialAugmentWide with probability `trivial_augment` (CAG-VLM's augmentation), seeded from
   the same rng through a forked torch generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.transforms import v2

from angioscribe.train.augment import XrayAugment


@dataclass(frozen=True)
class FrameAugment:
    """Mirror, X-ray exposure/geometry, then TrivialAugmentWide on a (H, W) uint8 frame."""

    size: int = 256
    hflip: float = 0.5
    trivial_augment: float = 0.5
    xray: XrayAugment = field(default_factory=lambda: XrayAugment(
        crop=256, rotate_degrees=15.0, scale_range=(0.9, 1.25), flips=False))

    def __call__(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.hflip:
            frame = np.ascontiguousarray(frame[:, ::-1])
        frame, _ = self.xray(frame, None, rng)
        if rng.random() < self.trivial_augment:
            frame = _trivial_augment_wide(frame, int(rng.integers(2**31)))
        return frame


def _trivial_augment_wide(frame: np.ndarray, seed: int) -> np.ndarray:
    """torchvision's TrivialAugmentWide draws from torch's global generator; fork it so the
    result depends only on `seed` and training stays reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        augmented = v2.TrivialAugmentWide()(torch.from_numpy(frame)[None])
    return augmented[0].numpy()

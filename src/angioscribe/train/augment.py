"""X-ray augmentation for segmentation crops: geometry and exposure, never mirror anatomy.

Angiograms vary in exposure (dose, patient size, detector gain), in C-arm angle and
magnification, and in quantum noise; these are what the model must tolerate. Mirroring is only
allowed when labels are side-free (stenosis): a mirrored left coronary tree is no real anatomy,
and the SYNTAX classes are told apart partly by where a vessel runs in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class XrayAugment:
    """Random crop at full resolution with small rotation/scale, then gamma, contrast,
    brightness, blur and noise. All randomness comes from the `rng` passed in, so a sample is
    reproducible from (seed, epoch, index) and training resumes exactly.

    `foreground_focus` is the share of crops centred near a labelled pixel: small, rare targets
    (stenoses cover ~0.3 % of a frame) are otherwise missing from most random crops, and the
    network sees too few of them to learn their extent. `zoom` multiplies every scale, for a
    network that sees frames enlarged (`Preprocess.zoom`): the crop is cut at its scale."""

    crop: int = 288
    rotate_degrees: float = 10.0
    scale_range: tuple[float, float] = (0.85, 1.2)
    gamma_range: tuple[float, float] = (0.7, 1.5)
    contrast_range: tuple[float, float] = (0.75, 1.3)
    brightness: float = 0.1
    blur_probability: float = 0.2
    noise_max: float = 0.03
    flips: bool = False
    foreground_focus: float = 0.0
    zoom: float = 1.0

    @classmethod
    def crops_only(cls, crop: int, flips: bool, foreground_focus: float,
                   zoom: float = 1.0) -> XrayAugment:
        """Random crops (and flips where labels allow) with no geometry or exposure jitter: a
        closing stage that fits the labels as drawn once the network has learnt robustness."""
        return cls(crop=crop, rotate_degrees=0.0, scale_range=(1.0, 1.0), gamma_range=(1.0, 1.0),
                   contrast_range=(1.0, 1.0), brightness=0.0, blur_probability=0.0,
                   noise_max=0.0, flips=flips, foreground_focus=foreground_focus, zoom=zoom)

    def __call__(
        self, image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(crop x crop) uint8 image and mask from a (H, W) uint8 image and label map; a
        whole-frame classifier passes mask None and gets None back."""
        image, mask = self._geometry(image, mask, rng)
        return self._exposure(image, rng), mask

    def _geometry(
        self, image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        scale = rng.uniform(*self.scale_range) * self.zoom
        angle = rng.uniform(-self.rotate_degrees, self.rotate_degrees)
        half = self.crop / 2 / scale
        center_x, center_y = self._centre(image.shape, mask, half, rng)
        matrix = cv2.getRotationMatrix2D((center_x, center_y), angle, scale)
        matrix[:, 2] += (self.crop / 2 - center_x, self.crop / 2 - center_y)
        size = (self.crop, self.crop)
        fill = int(np.median(image))
        image = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=fill)
        if mask is not None:
            mask = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
        if self.flips:
            if rng.random() < 0.5:
                image, mask = image[:, ::-1], None if mask is None else mask[:, ::-1]
            if rng.random() < 0.5:
                image, mask = image[::-1], None if mask is None else mask[::-1]
        return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)

    def _centre(self, shape: tuple[int, ...], mask: np.ndarray | None, half: float,
                rng: np.random.Generator) -> tuple[float, float]:
        """Crop centre: uniform over the frame, or (`foreground_focus`) a labelled pixel moved
        by up to half the crop's half-width, so the target is seen off-centre too."""
        height, width = shape
        low_x, high_x = min(half, width / 2), max(width - half, width / 2)
        low_y, high_y = min(half, height / 2), max(height - half, height / 2)
        if mask is not None and self.foreground_focus > 0 and rng.random() < self.foreground_focus:
            rows, cols = np.nonzero(mask)
            if len(rows):
                pick = rng.integers(len(rows))
                jitter_x, jitter_y = rng.uniform(-half / 2, half / 2, size=2)
                return (float(np.clip(cols[pick] + jitter_x, low_x, high_x)),
                        float(np.clip(rows[pick] + jitter_y, low_y, high_y)))
        return rng.uniform(low_x, high_x), rng.uniform(low_y, high_y)

    def _exposure(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = image.astype(np.float32) / 255.0
        x = x ** rng.uniform(*self.gamma_range)
        mean = float(x.mean())
        x = (x - mean) * rng.uniform(*self.contrast_range) + mean
        x = x + rng.uniform(-self.brightness, self.brightness)
        if rng.random() < self.blur_probability:
            x = cv2.GaussianBlur(x, (0, 0), sigmaX=rng.uniform(0.5, 1.2))
        x = x + rng.normal(0.0, rng.uniform(0.0, self.noise_max), size=x.shape).astype(np.float32)
        return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

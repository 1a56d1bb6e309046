"""The Cine: one X-ray cine loop (or a single frame) with the header values the chain needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Cine:
    """Frames of one acquisition in display orientation (MONOCHROME2: vessels dark).

    `frames` is a (T, H, W) uint8 array: readers apply rescale, VOI LUT/window and
    MONOCHROME1 inversion so every later step sees the same grey scale whatever the source.
    Angles follow DICOM: primary < 0 is RAO, > 0 LAO; secondary < 0 caudal, > 0 cranial.
    `warnings` lists header values the reader dropped (unreadable, NaN, out of range), so a
    field that is None says why when the file did carry something.
    """

    frames: np.ndarray
    source: str
    fps: float | None = None
    primary_angle: float | None = None
    secondary_angle: float | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    sid_mm: float | None = None
    sod_mm: float | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None
    modality: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.frames.ndim == 2:
            self.frames = self.frames[None]
        if self.frames.ndim != 3:
            shape = self.frames.shape
            raise ValueError(f"{self.source}: frames must be (T, H, W), got shape {shape}")

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def rows(self) -> int:
        return int(self.frames.shape[1])

    @property
    def cols(self) -> int:
        return int(self.frames.shape[2])

    def header(self) -> dict[str, Any]:
        """Everything but the pixels, as JSON-ready values."""
        record = asdict(self)
        record.pop("frames")
        record.update(frames=self.n_frames, rows=self.rows, cols=self.cols)
        return record

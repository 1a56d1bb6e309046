"""Labelled frames for key-frame training and evaluation, and the torch dataset over them.

Sources (docs/keyframes.md gives the definitions and the exact recipe):

- ARCADE syntax images: diagnostic frames with laterality from their SYNTAX segments. Each image
  yields three samples: itself ("better"), a derived "bad" frame (faint, partial filling or
  motion, drawn per epoch) and a derived contrast-free "other" frame (`keyframes.derive`).
  ARCADE's own train/val split is kept; every derived frame stays in its source image's split.
- labelled real cine frames from a CSV (labels/clinical-lca-keyframes.csv), used as they are;
- simulated studies (`angioscribe sim`): candidate frames labelled by the simulator's truth.

A sample is a pure function of (seed, epoch, index), as the training loop requires for exact
resumes; evaluation sets use epoch 0 forever, so their derived frames never change.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from angioscribe.anatomy import Laterality
from angioscribe.data.arcade import ArcadeImage, load_arcade
from angioscribe.errors import InputError
from angioscribe.io import read_cine
from angioscribe.keyframes.augment import FrameAugment
from angioscribe.keyframes.classes import QUALITIES, Quality, class_index
from angioscribe.keyframes.derive import BAD_DERIVATIONS, derive_frame
from angioscribe.models.registry import Preprocess

WORK_SIZE = 256
LABEL_COLUMNS = ("cine", "frame", "laterality", "keyframe")


@dataclass(frozen=True)
class LabelledFrame:
    """One training/evaluation sample before pixels are read.

    `group` is the video (or, for ARCADE, the image: one patient acquisition) the frame comes
    from; splits are made on groups, never on frames. `derived` says the pixels are made from a
    diagnostic frame by `keyframes.derive` to look like `quality`; otherwise they are used as is.
    """

    source: str
    frame: int | None
    laterality: Laterality
    quality: Quality
    group: str
    derived: bool = False
    arcade: ArcadeImage | None = None

    @property
    def target(self) -> int:
        return class_index(self.laterality, self.quality)


def arcade_frames(root: str | Path, split: str) -> list[LabelledFrame]:
    """Three samples (better, derived bad, derived other) per ARCADE syntax image of `split`.

    Images whose segments do not decide the side (none here) are skipped, not guessed.
    """
    frames = []
    for image in load_arcade(root, "syntax", split).images:
        if image.laterality is None:
            continue
        group = f"arcade-syntax-{split}/{image.file_name}"
        for quality in QUALITIES:
            frames.append(LabelledFrame(str(image.path), None, image.laterality, quality, group,
                                        derived=True, arcade=image))
    return frames


def labelled_cine_frames(csv_path: str | Path, data_root: str | Path) -> list[LabelledFrame]:
    """Frames labelled by hand in a CSV with columns cine, frame, laterality, keyframe; `cine`
    is relative to `data_root` (the shared data folder), `frame` is 0-based."""
    csv_path, data_root = Path(csv_path), Path(data_root)
    try:
        rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    except OSError as error:
        raise InputError(csv_path, f"cannot read key-frame labels: {error}") from error
    if not rows or any(column not in rows[0] for column in LABEL_COLUMNS):
        raise InputError(csv_path, f"key-frame label CSV needs columns {', '.join(LABEL_COLUMNS)}")
    frames = []
    for row in rows:
        if row["laterality"] not in ("LCA", "RCA") or row["keyframe"] not in QUALITIES:
            raise InputError(csv_path, f"bad label {row['laterality']}/{row['keyframe']} "
                                       f"for {row['cine']} frame {row['frame']}")
        source = str(data_root / row["cine"])
        frames.append(LabelledFrame(source, int(row["frame"]), row["laterality"],  # type: ignore[arg-type]
                                    row["keyframe"], group=source))  # type: ignore[arg-type]
    return frames


def simulated_frames(folder: str | Path) -> list[LabelledFrame]:
    """Candidate frames of every simulated cine under `folder` (each study's truth.json next to
    its dicom/), labelled from the simulator's per-frame truth; grouped by study (patient)."""
    from angioscribe.keyframes.classify import frames_to_score

    frames = []
    for truth_path in sorted(Path(folder).rglob("truth.json")):
        try:
            truth = json.loads(truth_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(truth_path, f"cannot read simulator truth: {error}") from error
        for view in truth["views"]:
            source = str(truth_path.parent / view["dicom"])
            labels = view["frames"]["keyframe"]
            for index in frames_to_score(read_cine(source)):
                frames.append(LabelledFrame(source, index, view["laterality"], labels[index],
                                            group=str(truth["study_id"])))
    if not frames:
        raise InputError(folder, "no simulated study (truth.json with views) found")
    return frames


class KeyframeDataset(Dataset):
    """(input tensor, class index) per LabelledFrame; derivation and augmentation seeded by
    (seed, epoch, index). Working frames are cached at 256 px: ARCADE fits in ~80 MB."""

    def __init__(self, frames: list[LabelledFrame], preprocess: Preprocess,
                 augment: FrameAugment | None = None, seed: int = 0) -> None:
        if not frames:
            raise ValueError("no labelled frames")
        self.frames = frames
        self.preprocess = preprocess
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._mask_cache: dict[str, dict[str, np.ndarray]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def targets(self) -> np.ndarray:
        return np.array([frame.target for frame in self.frames])

    def image(self, index: int) -> np.ndarray:
        """The (256, 256) uint8 frame the model sees for sample `index`, before preprocessing."""
        item = self.frames[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        frame = working_frame(item.source, item.frame)
        if item.derived:
            derivation = item.quality if item.quality != "bad" else rng.choice(BAD_DERIVATIONS)
            masks = self._masks(item.arcade) if derivation == "partial" and item.arcade else None
            frame = derive_frame(frame, derivation, rng, masks, item.laterality)
        if self.augment is not None:
            frame = self.augment(frame, rng)
        return frame

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.preprocess(self.image(index)), self.frames[index].target

    def _masks(self, image: ArcadeImage) -> dict[str, np.ndarray]:
        key = str(image.path)
        if key not in self._mask_cache:
            self._mask_cache[key] = segment_masks(image)
        return self._mask_cache[key]


@lru_cache(maxsize=4096)
def working_frame(source: str, frame: int | None) -> np.ndarray:
    """A single image, or frame `frame` of a cine, resized to the 256 px working size."""
    pixels = _cine_frames(source)[frame if frame is not None else 0]
    return cv2.resize(pixels, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=4)
def _cine_frames(source: str) -> np.ndarray:
    return read_cine(source).frames


def segment_masks(image: ArcadeImage) -> dict[str, np.ndarray]:
    """SYNTAX segment number -> boolean mask at the working size (for partial filling)."""
    labels = cv2.resize(image.mask("syntax"), (WORK_SIZE, WORK_SIZE),
                        interpolation=cv2.INTER_NEAREST)
    by_id = {annotation.category_id: annotation.segment for annotation in image.annotations}
    return {by_id[int(i)]: labels == i for i in np.unique(labels) if i in by_id}


def class_counts(frames: list[LabelledFrame], n_classes: int) -> np.ndarray:
    return np.bincount([frame.target for frame in frames], minlength=n_classes)


def describe(frames: list[LabelledFrame]) -> dict[str, Any]:
    """Counts per class and number of groups, for logs and the model card."""
    counts: dict[str, int] = {}
    for frame in frames:
        key = f"{frame.laterality}_{frame.quality}"
        counts[key] = counts.get(key, 0) + 1
    return {"frames": len(frames), "groups": len({f.group for f in frames}), "classes": counts}

"""Out-of-scope guard: ARCADE val acceptance, refusal of non-coronary images, cost per frame.

Target (issue #22): non-coronary images refused, >= 99 % of ARCADE val frames (syntax and
stenosis val, 200 each) accepted. The negatives are what a user could feed by mistake: the
WG04 cerebral angiogram, scikit-image's sample pictures (photos, text, a retinal fundus image
and its vessels, a CT phantom), generated noise, blank and gradient frames, a rendered text
page, and ARCADE val frames with their contrast removed (`keyframes.derive`, level 0). The
GE coronary phantom cines are reported apart: a contrast-filled coronary tree phantom is
neither clearly in nor out of scope. The real clinical cine (37 frames of a left coronary
injection, held out from every fit) should pass. Cost: median wall time of the guard (encoder pass +
distance) on one 512 px frame and per frame in a batch of 8, one torch thread, and the CPU
time of the single frame. Val frames that are look-alikes of the frames the statistics were
fitted on (ARCADE holds some pictures in several splits) are counted, and the acceptance
without them is given too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import skimage.data
import torch
from record import median_ms, record

from angioscribe.data.lookalike import image_signature, lookalike_pairs
from angioscribe.io import read_cine
from angioscribe.io.images import frame_files, read_image
from angioscribe.keyframes.derive import contrast_free_background, opacify
from angioscribe.scope import ScopeGuard

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VAL_FOLDERS = ("arcade/syntax/val/images", "arcade/stenosis/val/images")
FIT_FOLDER = "arcade/syntax/train/images"
SKIMAGE_PICTURES = ("astronaut", "brick", "camera", "cat", "cell", "clock", "coffee", "coins",
                    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry",
                    "logo", "microaneurysms", "moon", "page", "retina", "rocket", "text",
                    "shepp_logan_phantom", "binary_blobs", "checkerboard", "colorwheel")
CONTRAST_FREE = 20
REPEATS = 30


def grey_uint8(image: np.ndarray) -> np.ndarray:
    """Any scikit-image sample as an 8-bit grey frame (RGB(A) to luminance, 0-255 range)."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    image = image.astype(np.float64)
    span = max(float(np.ptp(image)), 1e-9)
    return np.round(255 * (image - image.min()) / span).astype(np.uint8)


def text_page() -> np.ndarray:
    page = np.full((512, 512), 255, np.uint8)
    for line in range(12):
        cv2.putText(page, f"Report line {line}: findings and impression", (10, 40 + 38 * line),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2)
    return page


def negatives() -> dict[str, np.ndarray]:
    """Name -> non-coronary 8-bit frame."""
    rng = np.random.default_rng(0)
    frames = {"wg04_cerebral": read_cine(DATA / "dicom/wg04-xa/XA1_JPLL.dcm").frames[0]}
    frames |= {f"skimage_{name}": grey_uint8(getattr(skimage.data, name)())
               for name in SKIMAGE_PICTURES}
    smooth = cv2.GaussianBlur(rng.normal(0, 1, (512, 512)), (0, 0), 8)
    frames |= {"noise_uniform": rng.integers(0, 256, (512, 512), dtype=np.uint8),
               "noise_gaussian": np.clip(rng.normal(128, 40, (512, 512)), 0, 255)
               .astype(np.uint8),
               "noise_smooth": grey_uint8(smooth),
               "blank_black": np.zeros((512, 512), np.uint8),
               "blank_grey": np.full((512, 512), 128, np.uint8),
               "blank_white": np.full((512, 512), 255, np.uint8),
               "gradient": np.tile(np.linspace(0, 255, 512), (512, 1)).astype(np.uint8),
               "text_page": text_page()}
    for file in frame_files(DATA / VAL_FOLDERS[0])[:CONTRAST_FREE]:
        frame = cv2.resize(read_image(file).frames[0], (256, 256), interpolation=cv2.INTER_AREA)
        frames[f"no_contrast_{file.stem}"] = opacify(frame, contrast_free_background(frame), 0.0)
    return frames


def phantoms() -> dict[str, np.ndarray]:
    """The middle frame of each GE coronary phantom cine."""
    out = {}
    for file in sorted((DATA / "dicom/phantom-xa").glob("*.dcm")):
        frames = read_cine(file).frames
        out[f"phantom_{file.stem}"] = frames[len(frames) // 2]
    return out


def lookalikes_of_fitted(files: list[Path]) -> set[int]:
    """Indices of `files` that are look-alikes (same picture or acquisition) of a frame the
    statistics were fitted on: ARCADE stores some pictures in both tasks and both splits."""
    fitted = np.stack([image_signature(file) for file in frame_files(DATA / FIT_FOLDER)])
    val = np.stack([image_signature(file) for file in files])
    return {i for i, _, _ in lookalike_pairs(val, fitted)}


def scores(guard: ScopeGuard, frames: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {name: guard.check(frame)[0].to_record() for name, frame in frames.items()}


def main() -> None:
    torch.set_num_threads(1)
    guard = ScopeGuard.load()
    metrics: dict[str, Any] = {"threshold": round(guard.statistics.threshold, 3)}
    files = {folder: frame_files(DATA / folder) for folder in VAL_FOLDERS}
    verdicts = {folder: [guard.check(read_image(file).frames)[0] for file in folder_files]
                for folder, folder_files in files.items()}
    for folder, folder_verdicts in verdicts.items():
        task = folder.split("/")[1]
        metrics[f"{task}_val_frames"] = len(folder_verdicts)
        metrics[f"{task}_val_accepted"] = round(
            float(np.mean([v.in_scope for v in folder_verdicts])), 4)
        metrics[f"{task}_val_max_score"] = round(max(v.score for v in folder_verdicts), 3)
    accepted = [v.in_scope for folder_verdicts in verdicts.values() for v in folder_verdicts]
    metrics["arcade_val_accepted"] = round(float(np.mean(accepted)), 4)
    seen = lookalikes_of_fitted([file for folder_files in files.values()
                                 for file in folder_files])
    metrics["arcade_val_lookalikes_of_fitted"] = len(seen)
    metrics["arcade_val_accepted_without_lookalikes"] = round(float(np.mean(
        [ok for index, ok in enumerate(accepted) if index not in seen])), 4)
    clinical = guard.check(read_cine(DATA / "cine/clinical-lca/Projection_0").frames)
    metrics["clinical_cine_accepted"] = sum(v.in_scope for v in clinical)
    metrics["clinical_cine_frames"] = len(clinical)
    metrics["clinical_cine_refused_frames"] = [i for i, v in enumerate(clinical) if not v.in_scope]
    negative = scores(guard, negatives())
    metrics["negatives"] = len(negative)
    metrics["negatives_refused"] = sum(not v["in_scope"] for v in negative.values())
    metrics["negatives_min_score"] = min(v["score"] for v in negative.values())
    frame = read_image(frame_files(DATA / VAL_FOLDERS[0])[0]).frames
    batch = np.repeat(frame, 8, 0)
    metrics["cpu_ms_per_frame_single_1thread"] = round(
        median_ms(lambda: guard.check(frame), len(frame), REPEATS, clock=time.thread_time), 2)
    metrics["ms_per_frame_single_1thread"] = round(
        median_ms(lambda: guard.check(frame), len(frame), REPEATS), 2)
    metrics["ms_per_frame_batch8_1thread"] = round(
        median_ms(lambda: guard.check(batch), len(batch), REPEATS), 2)
    metrics["negative_scores"] = negative
    metrics["phantom_scores"] = scores(guard, phantoms())
    path = record("scope", metrics, notes="median of 30 runs; machine shared with other jobs")
    print({k: v for k, v in metrics.items() if not isinstance(v, dict)}, "->", path)


if __name__ == "__main__":
    main()

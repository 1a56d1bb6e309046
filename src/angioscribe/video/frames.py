"""Which frames of a cine the video model sees: a fixed-length clip centred on opacification.

DeepCORO-CLIP samples frames at random at inference and assumes 30 fps when the header is
silent. Here the clip is deterministic (the same cine always gives the same prediction) and
centred on the most opacified candidate frame (`angioscribe.frames`), and its stride follows the
cine's real frame rate, so a 15 fps cine is not read at half the intended time span.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from angioscribe.frames import candidate_frames


def clip_stride(stride: int, fps: float | None, reference_fps: float) -> int:
    """The stride in this cine's frames that spans the time `stride` spans at `reference_fps`."""
    if not fps or fps <= 0:
        return stride
    return max(1, round(stride * fps / reference_fps))


def opacified_centre(frames: np.ndarray) -> int:
    """The index of the most opacified candidate frame (the middle frame when none stands out)."""
    candidates = candidate_frames(frames)
    if not candidates:
        return len(frames) // 2
    return max(candidates, key=lambda candidate: candidate.opacification).index


def clip_indices(n_frames: int, centre: int, length: int, stride: int) -> np.ndarray:
    """`length` indices `stride` apart around `centre`, shifted to stay inside the cine; a cine
    shorter than the clip repeats its last frame (the clip keeps its length)."""
    span = (length - 1) * stride
    start = min(max(0, centre - span // 2), max(0, n_frames - 1 - span))
    return np.minimum(start + stride * np.arange(length), n_frames - 1)


def choose_frames(frames: np.ndarray, fps: float | None, length: int, stride: int,
                  reference_fps: float) -> np.ndarray:
    """The clip's frame indices for a (T, H, W) cine (deterministic)."""
    return clip_indices(len(frames), opacified_centre(frames), length,
                        clip_stride(stride, fps, reference_fps))


def clip_tensor(frames: np.ndarray, indices: np.ndarray, size: int) -> torch.Tensor:
    """(T, 1, size, size) float frames scaled to [-1, 1] (the ImageNet Lite0's input scale)."""
    x = torch.from_numpy(np.ascontiguousarray(frames[indices])).float().div_(127.5).sub_(1.0)
    return F.interpolate(x[:, None], size=(size, size), mode="bilinear", antialias=True)

"""PNG figures people would rather look at than numbers: frame curves and candidate strips."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from angioscribe.cine import Cine  # noqa: E402
from angioscribe.frames import Candidate, frame_statistics  # noqa: E402
from angioscribe.keyframes.classify import FrameScore  # noqa: E402

MAX_STRIP = 8


def plot_candidates(cine: Cine, candidates: Sequence[Candidate], path: Path) -> Path:
    """Per-frame mean and variance with candidates marked, above a strip of candidate frames.

    The curves show why each frame was picked; the strip lets a reader check at a glance that
    the most opacified candidate really shows filled vessels.
    """
    mean, variance = frame_statistics(cine.frames)
    shown = sorted(candidates, key=lambda c: -c.opacification)[:MAX_STRIP]
    fig = plt.figure(figsize=(2 * max(len(shown), 4), 5.5), constrained_layout=True)
    grid = fig.add_gridspec(2, max(len(shown), 1), height_ratios=(1.2, 1))
    curves = fig.add_subplot(grid[0, :])
    curves.plot(mean, color="tab:blue", label="mean intensity")
    curves.set_xlabel("frame")
    curves.set_ylabel("mean", color="tab:blue")
    spread = curves.twinx()
    spread.plot(variance, color="tab:orange", label="variance")
    spread.set_ylabel("variance", color="tab:orange")
    for candidate in candidates:
        curves.axvline(candidate.index, color="grey", lw=0.8, ls="--")
    curves.set_title(
        f"{Path(cine.source).name}: {len(candidates)} candidates of {cine.n_frames} frames"
    )
    for column, candidate in enumerate(sorted(shown, key=lambda c: c.index)):
        axis = fig.add_subplot(grid[1, column])
        axis.imshow(cine.frames[candidate.index], cmap="gray", vmin=0, vmax=255)
        axis.set_title(f"#{candidate.index} op={candidate.opacification:.2f}", fontsize=8)
        axis.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_keyframes(
    study: str,
    chosen: dict[str, list[tuple[FrameScore, np.ndarray]]],
    missing: dict[str, str],
    path: Path,
) -> Path:
    """The study's key frames side by side, titled with side, source frame and confidence.

    A missing side gets a blank panel with the reason, so the figure shows the gap instead of
    hiding it.
    """
    panels = [(side, item) for side, items in chosen.items() for item in items]
    panels += [(side, reason) for side, reason in missing.items()]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4 * max(len(panels), 1), 4.4))
    axes = np.atleast_1d(axes)
    for axis, (side, item) in zip(axes, panels, strict=False):
        axis.axis("off")
        if isinstance(item, str):
            axis.text(0.5, 0.5, f"{side}: none\n{item}", ha="center", va="center", wrap=True)
            continue
        score, frame = item
        axis.imshow(frame, cmap="gray", vmin=0, vmax=255)
        confidence = score.scores[f"{side}_better"]
        axis.set_title(
            f"{side}: {Path(score.path).name} #{score.frame} ({confidence:.2f})", fontsize=9
        )
    fig.suptitle(f"key frames of {Path(study).name}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path

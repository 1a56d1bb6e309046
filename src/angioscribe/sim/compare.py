"""Side by side: a simulated cine against a real one, to see what the phantom gets wrong.

The simulated view copies the real acquisition's geometry (positioner angles, and the source
and detector distances when the real header has them), so differences are the simulator's,
not the camera's. The figure shows frames at the same fractions of each cine and the per-frame
intensity mean and variance (the curves CAG-VLM picks candidate frames from), plus the grey
level histograms at the most opacified frame.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from angioscribe.cine import Cine
from angioscribe.frames import frame_statistics
from angioscribe.sim.study import SimulatedView, simulate_study

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def simulate_like(real: Cine, seed: int) -> SimulatedView:
    """A left-coronary cine simulated at the real cine's angles (AP when they are missing)."""
    primary = real.primary_angle if real.primary_angle is not None else 0.0
    secondary = real.secondary_angle if real.secondary_angle is not None else 0.0
    study = simulate_study(seed, views=[("LCA", primary, secondary)])
    return study.views[0]


def _zscore(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else values * 0.0


def comparison_figure(real: Cine, simulated: SimulatedView, path: Path) -> Path:
    """Frames at matching cine fractions (top: real, bottom: simulated) and intensity curves."""
    sim_frames = simulated.cine.frames
    fig = plt.figure(figsize=(3 * len(FRACTIONS), 10), constrained_layout=True)
    grid = fig.add_gridspec(3, len(FRACTIONS), height_ratios=(1, 1, 1.1))
    for column, fraction in enumerate(FRACTIONS):
        for row, (name, frames) in enumerate((("real", real.frames), ("simulated", sim_frames))):
            index = int(round(fraction * (len(frames) - 1)))
            axis = fig.add_subplot(grid[row, column])
            axis.imshow(frames[index], cmap="gray", vmin=0, vmax=255)
            axis.set_title(f"{name} frame {index + 1}/{len(frames)}", fontsize=9)
            axis.axis("off")
    curves = fig.add_subplot(grid[2, : len(FRACTIONS) - 2])
    for name, frames, colour in (("real", real.frames, "black"),
                                 ("simulated", sim_frames, "tab:red")):
        mean, variance = frame_statistics(frames)
        time = np.linspace(0, 1, len(frames))
        curves.plot(time, _zscore(mean), color=colour, label=f"{name} mean (z)")
        curves.plot(time, _zscore(variance), color=colour, ls="--", label=f"{name} variance (z)")
    curves.plot(np.linspace(0, 1, len(sim_frames)), simulated.cine.opacification * 2 - 1,
                color="tab:blue", lw=0.8, label="simulated opacification (truth, scaled)")
    curves.set_xlabel("fraction of cine")
    curves.set_ylabel("z-score within cine")
    curves.legend(fontsize=7, loc="lower left")
    curves.set_title("Per-frame intensity: real vs simulated", fontsize=10)
    histogram = fig.add_subplot(grid[2, len(FRACTIONS) - 2:])
    real_best = int(np.argmax(frame_statistics(real.frames)[1]))
    for name, frame, colour in (("real", real.frames[real_best], "black"),
                                ("simulated", sim_frames[simulated.best_frame], "tab:red")):
        histogram.hist(frame.ravel(), bins=64, range=(0, 255), histtype="step", color=colour,
                       density=True, label=name)
    histogram.set_xlabel("grey level")
    histogram.set_title("Grey levels, most opacified frame", fontsize=10)
    histogram.legend(fontsize=8)
    fig.suptitle(f"Simulated vs real cine ({Path(real.source).name}: primary "
                 f"{real.primary_angle}, secondary {real.secondary_angle})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

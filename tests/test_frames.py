"""Candidate frames: CAG-VLM's extrema rule on generated cines with known contrast phases."""

import numpy as np
import pytest

from angioscribe.frames import (
    BLOCK_FRAMES,
    candidate_frames,
    frame_statistics,
    local_extrema,
    opacification,
)


def contrast_cine(n_frames: int = 40, peak: int = 20, size: int = 64) -> np.ndarray:
    """A bright background whose dark 'vessel' band is most opaque at frame `peak`."""
    rng = np.random.default_rng(0)
    t = np.arange(n_frames)
    opacity = np.exp(-0.5 * ((t - peak) / 5.0) ** 2)
    frames = np.full((n_frames, size, size), 200.0)
    frames[:, size // 3 : size // 2, :] -= 150.0 * opacity[:, None, None]
    frames += rng.normal(0, 1.0, frames.shape)
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_frame_statistics_match_numpy_per_frame():
    cine = contrast_cine()
    mean, var = frame_statistics(cine)
    assert mean.shape == var.shape == (len(cine),)
    assert mean[7] == pytest.approx(cine[7].astype(float).mean())
    assert var[7] == pytest.approx(cine[7].astype(float).var())


def test_statistics_of_a_cine_longer_than_a_block_match_per_frame():
    """Blocks must join without a gap or overlap: every frame's numbers are its own."""
    cine = contrast_cine(n_frames=2 * BLOCK_FRAMES + 5, peak=BLOCK_FRAMES + 3)
    mean, var = frame_statistics(cine)
    as_float = cine.reshape(len(cine), -1).astype(float)
    np.testing.assert_allclose(mean, as_float.mean(axis=1))
    np.testing.assert_allclose(var, as_float.var(axis=1), rtol=1e-6)
    per_frame = [opacification(cine[i : i + 1])[0] for i in range(len(cine))]
    np.testing.assert_allclose(opacification(cine), per_frame, rtol=1e-6)


def test_local_extrema_on_known_series():
    series = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 4.0, 6.0])
    minima, maxima = local_extrema(series)
    assert minima.tolist() == [1, 5]
    assert maxima.tolist() == [0, 4, 7]


def test_plateau_counts_once():
    minima, maxima = local_extrema(np.array([0.0, 2.0, 2.0, 2.0, 0.0]))
    assert maxima.tolist() == [1]
    assert minima.tolist() == [0, 4]


def test_peak_opacification_is_the_best_candidate():
    cine = contrast_cine(peak=20)
    candidates = candidate_frames(cine)
    best = max(candidates, key=lambda c: c.opacification)
    assert abs(best.index - 20) <= 2
    assert "mean_min" in best.kinds


@pytest.mark.parametrize("min_gap", [1, 3, 5, 8])
def test_candidates_respect_min_gap(min_gap):
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 255, size=(60, 16, 16), dtype=np.uint8)
    indices = [c.index for c in candidate_frames(noisy, min_gap=min_gap)]
    assert indices == sorted(indices)
    assert all(b - a >= min_gap for a, b in zip(indices, indices[1:], strict=False))
    assert len(indices) > 1


def test_bad_shapes_and_gap_are_rejected():
    with pytest.raises(ValueError, match="T, H, W"):
        candidate_frames(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="min_gap"):
        candidate_frames(contrast_cine(), min_gap=0)


def test_opacification_ignores_exposure_drift():
    """Automatic exposure brightens the frames while thin vessels fill: detail still wins."""
    n, size = 30, 96
    frames = np.full((n, size, size), 90.0)
    drift = np.linspace(0, 40, n)
    filling = np.clip(np.arange(n) / 20, 0, 1)
    for column in range(10, size, 16):
        frames[:, :, column : column + 2] -= 60 * filling[:, None, None]
    frames += drift[:, None, None]
    candidates = candidate_frames(np.clip(frames, 0, 255).astype(np.uint8), min_gap=3)
    assert max(candidates, key=lambda c: c.opacification).index >= 20
    assert opacification(frames[:1])[0] < opacification(frames[-1:])[0]


def test_real_cine_best_candidate_is_filled(shared_data):
    from angioscribe.io import read_cine

    cine = read_cine(shared_data / "cine" / "clinical-lca" / "Projection_0")
    best = max(candidate_frames(cine.frames), key=lambda c: c.opacification)
    assert best.index >= cine.n_frames // 2

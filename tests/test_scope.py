"""Out-of-scope guard: coronary angiograms pass, other images are refused with their score.

The full ARCADE val acceptance (400 frames) is measured by bench/bench_scope.py; here a few
val frames of each task, the WG04 cerebral angiogram and generated negatives.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from angioscribe.io import read_cine
from angioscribe.io.images import frame_files, read_image
from angioscribe.keyframes.derive import contrast_free_background, opacify
from angioscribe.scope import (
    ScopeGuard,
    ScopeStatistics,
    check_scope,
    check_scope_batch,
    default_guard,
    fit_scope,
    fit_statistics,
)

VAL_PER_TASK = 10


@pytest.fixture(scope="module")
def guard() -> ScopeGuard:
    return default_guard()


@pytest.fixture(scope="module")
def val_frames(shared_data: Path) -> np.ndarray:
    """The first frames of ARCADE syntax and stenosis val, VAL_PER_TASK of each."""
    files = [file for task in ("syntax", "stenosis")
             for file in frame_files(shared_data / "arcade" / task / "val" / "images")
             [:VAL_PER_TASK]]
    return np.concatenate([read_image(file).frames for file in files])


def test_arcade_val_frames_are_in_scope(guard: ScopeGuard, val_frames: np.ndarray) -> None:
    verdicts = guard.check(val_frames)
    assert len(verdicts) == 2 * VAL_PER_TASK
    assert all(verdict.in_scope for verdict in verdicts), [v.score for v in verdicts]
    assert all(verdict.score <= verdict.threshold for verdict in verdicts)


def test_cerebral_angiogram_is_refused_with_its_score(shared_data: Path) -> None:
    frame = read_cine(shared_data / "dicom" / "wg04-xa" / "XA1_JPLL.dcm").frames[0]
    verdict = check_scope(frame)
    assert not verdict.in_scope
    assert verdict.score > verdict.threshold
    assert "not a coronary angiogram" in verdict.reason
    assert verdict.to_record()["in_scope"] is False


def generated_negatives(shared_data: Path) -> dict[str, np.ndarray]:
    """Noise, blank, a natural photo, a text page and an angiogram without its contrast."""
    rng = np.random.default_rng(7)
    page = np.full((400, 400), 255, np.uint8)
    for line in range(10):
        cv2.putText(page, "lorem ipsum dolor", (5, 35 * (line + 1)), cv2.FONT_HERSHEY_PLAIN,
                    2, 0, 2)
    angiogram = cv2.resize(read_image(frame_files(
        shared_data / "arcade" / "syntax" / "val" / "images")[0]).frames[0], (256, 256),
        interpolation=cv2.INTER_AREA)
    return {
        "noise": rng.integers(0, 256, (512, 512), dtype=np.uint8),
        "blank": np.full((512, 512), 90, np.uint8),
        "photo": skimage.data.camera(),
        "text": page,
        "no contrast": opacify(angiogram, contrast_free_background(angiogram), 0.0),
    }


def test_generated_non_angiograms_are_refused(guard: ScopeGuard, shared_data: Path) -> None:
    negatives = generated_negatives(shared_data)
    for name, frame in negatives.items():
        verdict = guard.check(frame)[0]
        assert not verdict.in_scope, (name, verdict)


def test_batch_gives_the_single_frame_verdicts(val_frames: np.ndarray) -> None:
    frames = val_frames[:3]
    batch = check_scope_batch(frames)
    single = [check_scope(frame) for frame in frames]
    assert [v.in_scope for v in batch] == [v.in_scope for v in single]
    np.testing.assert_allclose([v.score for v in batch], [v.score for v in single], rtol=1e-4)


def test_features_give_the_same_verdicts_as_frames(guard: ScopeGuard,
                                                   val_frames: np.ndarray) -> None:
    """A caller holding the encoder's pooled features needs no second pass."""
    frames = val_frames[:2]
    from_features = guard.statistics.verdicts(guard.features(frames))
    assert [v.score for v in from_features] == pytest.approx([v.score for v in
                                                              guard.check(frames)])


def test_threshold_is_the_percentile_of_training_distances(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    features = np.abs(rng.normal(1.0, 0.3, (400, 32)))
    statistics = fit_statistics(features, components=4, percentile=95.0)
    refused = statistics.distances(features) > statistics.threshold
    assert refused.mean() == pytest.approx(0.05, abs=0.005)
    far = features[:5] + rng.normal(0, 3.0, (5, 32))
    assert not any(v.in_scope for v in statistics.verdicts(far))
    reloaded = ScopeStatistics.load(statistics.save(tmp_path / "scope.safetensors"))
    np.testing.assert_allclose(reloaded.distances(features), statistics.distances(features),
                               rtol=1e-6)
    assert reloaded.threshold == statistics.threshold
    assert reloaded.info["components"] == 4


def test_fit_scope_saves_the_statistics_it_fitted(guard: ScopeGuard, val_frames: np.ndarray,
                                                  tmp_path: Path) -> None:
    folder = tmp_path / "angiograms"
    folder.mkdir()
    for index, frame in enumerate(val_frames[:6]):
        cv2.imwrite(str(folder / f"{index}.png"), frame)
    fitted = fit_scope([folder], tmp_path / "scope.safetensors", components=2, percentile=100)
    assert fitted.info["frames"] == 6
    loaded = ScopeStatistics.load(tmp_path / "scope.safetensors")
    scores = [v.score for v in loaded.verdicts(guard.features(val_frames[:6]))]
    assert loaded.threshold == fitted.threshold
    assert max(scores) == pytest.approx(fitted.threshold, rel=1e-3)

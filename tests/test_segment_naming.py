"""Naming-rate evaluation of findings: ARCADE's annotated lesions on frames both tasks label,
and pseudo-lesions cut from annotated segments."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from angioscribe.anatomy import ARCADE_STENOSIS_ID
from angioscribe.cli import app
from angioscribe.data.arcade import ArcadeAnnotation, ArcadeImage, load_arcade
from angioscribe.data.lookalike import frames_in_both_tasks
from angioscribe.evaluate.segment_naming import (
    NamedLesion,
    lesions_on_annotated_segments,
    name_annotated_lesions,
    name_pseudo_lesions,
    naming_rates,
    pseudo_lesions,
)
from angioscribe.findings import MIN_VESSEL_PROBABILITY


def val_images(shared_data: Path, count: int):
    try:
        return load_arcade(shared_data, "syntax", "val").images[:count]
    except Exception as error:  # noqa: BLE001 (any reason the data is absent)
        pytest.skip(f"ARCADE syntax val not available: {error}")


def probabilities_of(label_map: np.ndarray) -> np.ndarray:
    """Near one-hot SYNTAX probabilities (26 channels) for a label map."""
    probabilities = np.full((26, *label_map.shape), 0.001, dtype=np.float32)
    np.put_along_axis(probabilities, label_map[None].astype(np.int64), 0.975, axis=0)
    return probabilities


def test_pseudo_lesions_are_lesion_sized_pieces_of_their_segment() -> None:
    polygon = np.array([[10, 40], [200, 40], [200, 49], [10, 49]], dtype=np.float64)
    lesions = pseudo_lesions(polygon, (256, 256), 5, np.random.default_rng(0))
    assert len(lesions) == 5
    for lesion in lesions:
        assert 40 <= lesion.polygon[:, 1].min() and lesion.polygon[:, 1].max() <= 49
        assert 100 < lesion.area <= 25 * 10  # at most the disc's width by the band's height


def test_the_annotations_own_map_names_every_pseudo_lesion(shared_data: Path) -> None:
    """With probabilities made from the ground-truth segments, naming is (almost) perfect:
    only where two annotated segments overlap can the later one take the name."""
    images = val_images(shared_data, 3)
    named = []
    for image in images:
        truth = probabilities_of(image.mask("syntax"))
        named += name_pseudo_lesions([image], lambda frame, truth=truth: (truth, []), range(26),
                                     per_segment=3)
    rates = {row["lesions"]: row for row in naming_rates(named)}
    assert rates["all"]["n"] == 3 * sum(len(i.annotations) for i in images)
    assert rates["all"]["segment_right"] >= 0.95 and rates["all"]["vessel_right"] >= 0.95


def test_a_model_that_sees_no_vessel_names_nothing(shared_data: Path) -> None:
    images = val_images(shared_data, 2)
    background = np.zeros((512, 512), np.int32)
    named = name_pseudo_lesions(images, lambda frame: (probabilities_of(background), []),
                                range(26))
    rates = {row["lesions"]: row for row in naming_rates(named)}
    assert 0.001 * 25 < MIN_VESSEL_PROBABILITY  # the background map is below the vessel floor
    assert rates["all"]["unassigned"] == rates["all"]["n"] > 0
    assert rates["all"]["segment_right"] == 0.0


def test_rates_split_main_vessels_from_side_branches() -> None:
    named = [NamedLesion("7", "7", "a"), NamedLesion("7", "6", "b"), NamedLesion("9", "9a", "c"),
             NamedLesion("12a", None, "d")]
    rates = {row["lesions"]: row for row in naming_rates(named)}
    assert rates["main vessels"] == {"lesions": "main vessels", "n": 2, "segment_right": 0.5,
                                     "segment_right_ci": [0.0, 1.0], "vessel_right": 1.0,
                                     "vessel_right_ci": [1.0, 1.0], "unassigned": 0}
    assert rates["side branches"]["vessel_right"] == 0.5  # 9a is still the first diagonal
    assert rates["side branches"]["unassigned"] == 1


def test_intervals_resample_frames_not_lesions() -> None:
    """Two lesions of one frame, one named right: every resample of frames keeps both."""
    one_frame = [NamedLesion("7", "7", "a.png"), NamedLesion("6", "5", "a.png")]
    two_frames = [NamedLesion("7", "7", "a.png"), NamedLesion("6", "5", "b.png")]
    together = naming_rates(one_frame)[0]["segment_right_ci"]
    apart = naming_rates(two_frames)[0]["segment_right_ci"]
    assert together == [0.5, 0.5] and apart == [0.0, 1.0]


def test_cli_reports_naming_rates_of_the_shipped_model(shared_data: Path, tmp_path: Path) -> None:
    val_images(shared_data, 1)
    figure = tmp_path / "naming.png"
    result = CliRunner().invoke(app, ["evaluate", "naming", "--data", str(shared_data),
                                      "--lesions", "pseudo", "--limit", "2", "--figure",
                                      str(figure), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["lesions"] for row in rows] == ["all", "main vessels", "side branches"]
    assert rows[0]["n"] > 10 and 0.3 < rows[0]["vessel_right"] <= 1.0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_names_a_folder_without_arcade(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "naming", "--data", str(tmp_path)])
    assert result.exit_code == 3 and str(tmp_path) in result.output


def band_annotation(category_id: int, segment: str, top: int, bottom: int) -> ArcadeAnnotation:
    polygon = np.array([[10, top], [200, top], [200, bottom], [10, bottom]], dtype=np.float64)
    return ArcadeAnnotation(category_id, segment, polygon)


def test_an_annotated_lesion_takes_the_segment_under_most_of_it(tmp_path: Path) -> None:
    """A lesion mostly on #7 and a little on #6 is a #7 lesion; one off every annotated
    segment is left out; the findings name the #7 lesion #7 from probabilities of that map."""
    syntax_image = ArcadeImage(1, "s.png", tmp_path / "s.png", 256, 256, [
        band_annotation(6, "6", 40, 60), band_annotation(7, "7", 61, 90)])
    lesions = [band_annotation(ARCADE_STENOSIS_ID, "", 55, 80),   # 6 rows on #6, 20 on #7
               band_annotation(ARCADE_STENOSIS_ID, "", 150, 160)]  # on no segment
    stenosis_image = ArcadeImage(2, "t.png", tmp_path / "t.png", 256, 256, lesions)
    labelled = lesions_on_annotated_segments(stenosis_image, syntax_image)
    assert [truth for _, truth in labelled] == ["7"]
    assert labelled[0][0].category_id == ARCADE_STENOSIS_ID
    cv2.imwrite(str(stenosis_image.path), np.full((256, 256), 128, np.uint8))
    truth = probabilities_of(syntax_image.mask("syntax"))
    named = name_annotated_lesions([(stenosis_image, syntax_image)],
                                   lambda frame: (truth, []), range(26))
    assert named == [NamedLesion("7", "7", "t.png")]


def test_a_third_of_the_stenosis_frames_are_labelled_in_the_syntax_task_too(
        shared_data: Path) -> None:
    pairs = frames_in_both_tasks(shared_data, syntax_split="val")
    assert len(pairs) > 50
    for stenosis_image, syntax_image in pairs[:5]:
        difference = np.abs(stenosis_image.load().astype(int) - syntax_image.load()).mean()
        assert difference < 3  # the same picture, re-encoded
        assert stenosis_image.stenosis_polygons or not stenosis_image.annotations
        assert syntax_image.segments


def test_cli_names_annotated_lesions_by_default(shared_data: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "naming", "--data", str(shared_data),
                                      "--limit", "5", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["lesions"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows["all"]["n"] > 0 and 0.0 < rows["all"]["vessel_right"] <= 1.0

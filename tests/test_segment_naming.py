"""Naming-rate evaluation of findings: pseudo-lesions cut from annotated ARCADE segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.data.arcade import load_arcade
from angioscribe.evaluate.segment_naming import (
    NamedLesion,
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
    named = [NamedLesion("7", "7"), NamedLesion("7", "6"), NamedLesion("9", "9a"),
             NamedLesion("12a", None)]
    rates = {row["lesions"]: row for row in naming_rates(named)}
    assert rates["main vessels"] == {"lesions": "main vessels", "n": 2, "segment_right": 0.5,
                                     "vessel_right": 1.0, "unassigned": 0}
    assert rates["side branches"]["vessel_right"] == 0.5  # 9a is still the first diagonal
    assert rates["side branches"]["unassigned"] == 1


def test_cli_reports_naming_rates_of_the_shipped_model(shared_data: Path, tmp_path: Path) -> None:
    val_images(shared_data, 1)
    figure = tmp_path / "naming.png"
    result = CliRunner().invoke(app, ["evaluate", "naming", "--data", str(shared_data),
                                      "--limit", "2", "--figure", str(figure), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["lesions"] for row in rows] == ["all", "main vessels", "side branches"]
    assert rows[0]["n"] > 10 and 0.3 < rows[0]["vessel_right"] <= 1.0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_names_a_folder_without_arcade(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "naming", "--data", str(tmp_path)])
    assert result.exit_code == 1 and str(tmp_path) in result.output

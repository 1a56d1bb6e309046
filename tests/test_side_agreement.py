"""The key-frame classifier's side against the SYNTAX segments' side (`evaluate sides`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.evaluate.side_agreement import FrameSides, side_rates


def test_rates_count_each_answer_and_who_is_right_where_they_differ() -> None:
    sides = [FrameSides("a", "LCA", "LCA", "LCA"),
             FrameSides("b", "RCA", "LCA", "RCA"),  # classifier wrong, segments right
             FrameSides("c", "LCA", "LCA", None),  # segments do not tell: no conflict
             FrameSides("d", "RCA", "RCA", "LCA")]  # segments wrong
    classifier, segments, differ = side_rates(sides, n_boot=200)
    assert classifier["right"] == pytest.approx(0.75) and classifier["untold"] == 0
    assert segments["right"] == pytest.approx(0.5) and segments["untold"] == 1
    low, high = segments["right_ci"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    assert [s.frame for s in sides if s.differ] == ["b", "d"]
    assert (differ["frames"], differ["classifier_right"], differ["segments_right"]) == (2, 1, 1)


def test_cli_measures_both_sides_on_arcade_val(shared_data: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "sides", "--data", str(shared_data),
                                      "--limit", "6", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["side_from"] for row in rows] == ["classifier", "segments", "both differ"]
    assert rows[0]["frames"] == rows[1]["frames"] == 6  # every syntax val frame has a side
    # the shipped models name the side of nearly every ARCADE val frame (docs/segmentation.md)
    assert rows[0]["right"] >= 0.8 and rows[1]["right"] >= 0.8
    # two sides only: where the answers differ, exactly one of them is right
    assert rows[2]["classifier_right"] + rows[2]["segments_right"] == rows[2]["frames"]


def test_cli_names_a_folder_without_arcade(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "sides", "--data", str(tmp_path)])
    assert result.exit_code == 3 and str(tmp_path) in result.output

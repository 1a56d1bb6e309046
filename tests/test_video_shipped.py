"""The shipped video model (`video-effnetl0`) on a held-out study of the simulator dataset it
was trained beside: the first test study of `sim videos --n-studies 600 --val 60 --test 100
--seed 2026` (its model card), simulated afresh, predicted through `angioscribe predict`."""

from __future__ import annotations

import csv
import json

import numpy as np
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.sim import dataset_seeds
from angioscribe.sim.study import simulate_study
from angioscribe.sim.video_dataset import split_names, video_rows
from angioscribe.video.data import read_table
from angioscribe.video.zoo import create_video_model


def first_test_seed() -> int:
    """The card's test split: the first study `split_names` holds out as test."""
    names = split_names(600, 60, 100)
    return next(seed for seed, name in zip(dataset_seeds(2026, 600), names, strict=True)
                if name == "test")


def test_shipped_model_ranks_the_significant_lesion_of_a_held_out_study_first(tmp_path):
    rows = video_rows(simulate_study(first_test_seed()), tmp_path, "test")
    with (tmp_path / "video.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (truth,) = read_table(tmp_path / "video.csv")
    out = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(app, ["predict", str(tmp_path / truth.videos[0].path.parts[-3]),
                                      "--model", "video-effnetl0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    p_significant = np.array([p["p_significant"] for p in record["predictions"]])
    significant, known = truth.labels[:, 1], ~np.isnan(truth.labels[:, 1])
    assert significant[known].sum() >= 1
    lesion = np.flatnonzero(known & (significant >= 0.5))
    healthy = np.flatnonzero(known & (significant < 0.5))
    threshold = create_video_model("video-effnetl0")[1].thresholds["significant"]
    assert p_significant[lesion].min() > threshold > 0
    assert p_significant[lesion].min() > p_significant[healthy].max()

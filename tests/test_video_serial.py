"""Serial studies of one patient in the video evaluation: embedding distances against other
patients' and against progression, on generated embeddings and a randomly initialised model."""

from __future__ import annotations

import os

import numpy as np
import torch

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.video.config import VideoConfig
from angioscribe.video.evaluate import serial_distances, study_embeddings
from angioscribe.video.study_model import FINDINGS, VideoStudyModel
from angioscribe.video.training import evaluate_table
from video_studies import TINY, write_studies


def _labels(stenosis: list[float]) -> np.ndarray:
    labels = np.zeros((len(stenosis), len(DEEPCORO_SEGMENTS), len(FINDINGS)))
    labels[:, 0, 0] = stenosis
    return labels


def test_study_embedding_is_the_mean_of_its_unit_video_embeddings():
    videos = np.array([[2.0, 0], [0, 5.0], [0, 3.0]])
    embedded = study_embeddings(videos, [2, 1])
    assert np.allclose(embedded, [[2 ** -0.5, 2 ** -0.5], [0, 1]])


def test_serial_pairs_close_and_further_with_more_progression():
    rng = np.random.default_rng(0)
    patients = rng.normal(size=(4, 8))
    change = np.array([0.05, 0.2, 0.4, 0.8])  # grows with the progression below
    embeddings = np.concatenate([patients, patients + change[:, None] * rng.normal(size=(4, 8))])
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    ids = ["P0", "P1", "P2", "P3"]
    report = serial_distances(embeddings, ids + [f"{p}V2" for p in ids], ids + ids,
                              _labels([50, 50, 25, 25, 75, 90, 99, 99]))
    assert report["serial_pairs"] == 4 and report["other_pairs"] == 24
    assert [pair["progression"] for pair in report["pairs"]] == [25, 40, 74, 74]
    assert report["same_patient_auroc"] == 1.0
    assert report["serial_distance"]["median"] < report["other_distance"]["q1"]
    assert report["progression_spearman"] > 0.5 and 0 < report["progression_spearman_p"] < 1
    unrelated = serial_distances(embeddings[[0, 5, 2, 7]], ["a", "b", "c", "d"],
                                 ["P0", "P0", "P1", "P1"], _labels([0, 0, 0, 0]))
    assert unrelated["same_patient_auroc"] < 1.0
    assert np.isnan(unrelated["progression_spearman"])  # two pairs: no rank correlation


def test_video_evaluation_reports_serial_distances_on_a_random_model(tmp_path):
    table = write_studies(tmp_path / "studies")
    text = table.read_text(encoding="utf-8")
    table.write_text(text.replace("αP1α", "αP0α").replace("αP3α", "αP2α"), encoding="utf-8")
    torch.manual_seed(0)
    model = VideoStudyModel(VideoConfig.from_dict(TINY), pretrained=False)
    report = evaluate_table(model, table, ("train", "val"), None, tmp_path / "eval", n_boot=10)
    serial = report["serial"]
    assert serial["serial_pairs"] == 2 and serial["other_pairs"] == 13
    assert {pair["patient"] for pair in serial["pairs"]} == {"P0", "P2"}
    assert all(pair["progression"] == 100 for pair in serial["pairs"])  # CTO, then none
    assert 0 <= serial["same_patient_auroc"] <= 1
    assert 0 <= serial["serial_distance"]["median"] <= 2
    figure = tmp_path / "eval" / "serial.png"
    assert str(figure) in report["figures"] and os.path.getsize(figure) > 0

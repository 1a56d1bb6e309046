"""Compact simulated studies for the video model: binned RLE cines and a DeepCORO-CLIP table."""

from __future__ import annotations

import csv

from angioscribe.io import read_cine
from angioscribe.sim.study import simulate_study
from angioscribe.sim.video_dataset import split_names, video_rows
from angioscribe.video.data import read_table


def test_split_names_spread_held_out_studies():
    names = split_names(10, 2, 2)
    assert names.count("val") == 2 and names.count("test") == 2
    assert {"train", "val", "test"} <= set(names[:6])  # a run stopped early has all three


def test_video_rows_write_binned_cines_and_a_table_that_reads_back(tmp_path):
    study = simulate_study(3, views=[("LCA", -27.7, -18.1), ("RCA", 40.0, 0.0)])
    rows = video_rows(study, tmp_path, "train")
    with (tmp_path / "video.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    full = study.views[0]
    cine = read_cine(tmp_path / rows[0]["FileName"])
    assert cine.frames.shape == (full.timeline.n_frames, 256, 256)
    assert cine.pixel_spacing_mm[0] == round(2 * full.arm.pixel_spacing_mm, 3)
    assert abs(cine.frames.mean() - full.cine.frames.mean()) < 1
    assert not (tmp_path / study.study_id / "masks").exists()
    (record,) = read_table(tmp_path / "video.csv")
    assert [v.side for v in record.videos] == ["LCA", "RCA"]
    by_side = study.truth()["reports"]["summary_by_side"]
    assert [v.text for v in record.videos] == [by_side["LCA"]["en"], by_side["RCA"]["en"]]


def test_followups_go_to_a_share_of_patients_with_cycled_progression():
    from angioscribe.sim.video_dataset import followup_progressions

    plan = followup_progressions(10, 0.4, max_grades=2)
    chosen = [p for p in plan if p is not None]
    assert len(chosen) == 4 and [p.grades for p in chosen] == [1, 2, 1, 2]
    assert all(p.visit == 2 for p in chosen)
    assert followup_progressions(3, 0.0) == [None, None, None]


def test_sim_videos_writes_follow_ups_beside_their_baseline(tmp_path):
    from typer.testing import CliRunner

    from angioscribe.cli import app

    result = CliRunner().invoke(app, ["sim", "videos", "--out", str(tmp_path), "--n-studies",
                                      "2", "--val", "0", "--test", "1", "--followups", "0.5"])
    assert result.exit_code == 0, result.output
    with (tmp_path / "video.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    visits = {(row["ss_patient_id"], row["visit"], row["ss_event_cath_id"], row["Split"])
              for row in rows}
    (patient,) = {p for p, visit, _, _ in visits if visit == "2"}
    pair = sorted(v for v in visits if v[0] == patient)
    assert [v[1] for v in pair] == ["1", "2"] and pair[1][2] == f"{patient}V2"
    assert pair[0][3] == pair[1][3]  # one patient, one split
    studies = read_table(tmp_path / "video.csv")
    assert len(studies) == 3 and len({s.patient for s in studies}) == 2

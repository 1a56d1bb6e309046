"""Key frames and laterality: classes, metrics, derived frames, registry, training, selection."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.evaluate.confusion import plot_confusion
from angioscribe.evaluate.keyframe import (
    keyframe_metrics,
    to_keyframe,
    to_laterality,
    weighted_f1,
)
from angioscribe.io import read_cine, read_studies
from angioscribe.keyframes.classes import CLASSES, class_index, split_class
from angioscribe.keyframes.classify import KeyframeClassifier, frame_score
from angioscribe.keyframes.dataset import (
    KeyframeDataset,
    arcade_frames,
    labelled_cine_frames,
    working_frame,
)
from angioscribe.keyframes.derive import contrast_free_background, derive_frame
from angioscribe.keyframes.select import choose_keyframes, select_keyframes
from angioscribe.keyframes.training import (
    KeyframeTraining,
    simulated_split,
)
from angioscribe.models.registry import (
    build_model,
    create_model,
    get_entry,
    load_artifact_weights,
    save_artifact,
    shipped_weights_dir,
)
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_study
from angioscribe.train.config import load_config
from angioscribe.train.loop import fit

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "labels" / "clinical-lca-keyframes.csv"
CINE = Path("cine/clinical-lca/Projection_0")
TINY_CONVNEXT = {"num_classes": 6, "dims": [8, 16], "depths": [1, 1], "encoder_weights": None}
needs_shipped = pytest.mark.skipif(
    not (shipped_weights_dir() / "keyframe-effnetl0.safetensors").is_file(),
    reason="shipped keyframe-effnetl0 weights not built yet",
)


def test_classes_split_and_project_consistently() -> None:
    assert CLASSES == get_entry("keyframe-effnetl0").labels == get_entry("convnext-base").labels
    assert split_class("RCA_bad") == ("RCA", "bad")
    assert CLASSES[class_index("LCA", "other")] == "LCA_other"
    every = np.arange(6)
    assert to_laterality(every).tolist() == [0, 0, 0, 1, 1, 1]
    assert to_keyframe(every).tolist() == [0, 2, 2, 1, 2, 2]
    with pytest.raises(ValueError, match="unknown key-frame class"):
        split_class("LAD_better")


def test_weighted_f1_matches_hand_computation() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    # class 0: P 1, R 2/3 -> F1 0.8; class 1: 1/2, 1/2 -> 0.5; class 2: 1/2, 1 -> 2/3
    expected = (3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6
    assert weighted_f1(true, pred, 3) == pytest.approx(expected)
    metrics = keyframe_metrics([0, 3, 1, 4], [1, 3, 1, 0])
    assert metrics["accuracy_laterality"] == pytest.approx(0.75)
    assert metrics["accuracy_6class"] == pytest.approx(0.5)


def test_confusion_figure_is_written(tmp_path: Path) -> None:
    path = plot_confusion([0, 1, 2, 3, 4, 5], [0, 1, 1, 3, 4, 0], CLASSES, tmp_path / "cm.png",
                          title="Key-frame classifier")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_derived_frames_lose_contrast_in_order(shared_data: Path) -> None:
    """On a real ARCADE frame: vessel contrast (frame below its contrast-free background)
    falls from better to faint to other, and the background itself has no vessels left."""
    frame = working_frame(str(shared_data / "arcade/syntax/train/images/1.jpg"), None)
    background = contrast_free_background(frame)
    vessel = (background - frame) > 20

    def contrast(derivation: str) -> float:
        derived = derive_frame(frame, derivation, np.random.default_rng(0))  # type: ignore[arg-type]
        return float((background - derived)[vessel].mean())

    assert vessel.mean() > 0.01
    assert contrast("better") > 2 * contrast("faint") > 2 * contrast("other")


def test_labelled_sources_and_splits(shared_data: Path) -> None:
    cine = labelled_cine_frames(LABELS, shared_data)
    assert len(cine) == 37 and {f.laterality for f in cine} == {"LCA"}
    assert [f.quality for f in cine].count("better") == 25
    train, val = arcade_frames(shared_data, "train"), arcade_frames(shared_data, "val")
    assert len(train) == 3000 and len(val) == 600
    assert not {f.group for f in train} & {f.group for f in val}
    sides = {f.laterality for f in val if f.group.endswith("/1.jpg")}
    assert len(sides) == 1  # all three samples of an image share its side


def test_registry_round_trip_effnet(tmp_path: Path) -> None:
    entry = get_entry("keyframe-effnetl0")
    model = build_model(entry).eval()
    path = save_artifact(model, entry, tmp_path / "kf.safetensors")
    loaded, preprocess, loaded_entry = create_model(str(path))
    assert loaded_entry.labels == CLASSES and preprocess.size == 128
    x = preprocess(np.full((224, 224), 128, np.uint8))[None]
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x), atol=2e-2)
    assert path.stat().st_size < 8e6  # fp16: commit-ready
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224), dtype=np.uint8)
    frozen = KeyframeClassifier(loaded, preprocess, loaded_entry)
    eager = KeyframeClassifier(loaded, preprocess, loaded_entry, freeze=False)
    assert isinstance(frozen.model, torch.jit.ScriptModule)
    assert np.allclose(frozen.probabilities(frames), eager.probabilities(frames), atol=1e-5)


def test_init_from_artifact_starts_from_its_weights(tmp_path: Path) -> None:
    entry = get_entry("keyframe-effnetl0")
    trained = save_artifact(build_model(entry).eval(), entry, tmp_path / "kf.safetensors")
    model = build_model(entry)
    load_artifact_weights(trained, model, entry)
    stored, _, _ = create_model(str(trained))
    x = torch.zeros(1, 1, 128, 128)
    with torch.inference_mode():
        assert torch.allclose(model.eval()(x), stored(x), atol=1e-4)
    other = replace(get_entry("convnext-base"), name="convnext-tiny-test", config=TINY_CONVNEXT)
    wrong = save_artifact(build_model(other), other, tmp_path / "convnext.safetensors")
    with pytest.raises(ValueError, match="not 'keyframe-effnetl0'"):
        load_artifact_weights(wrong, model, entry)


def test_registry_round_trip_convnext_random_weights(tmp_path: Path) -> None:
    entry = replace(get_entry("convnext-base"), name="convnext-tiny-test", config=TINY_CONVNEXT)
    model = build_model(entry).eval()
    path = save_artifact(model, entry, tmp_path / "convnext.safetensors")
    classifier = KeyframeClassifier(*create_model(str(path)))
    probabilities = classifier.probabilities(np.zeros((3, 64, 64), np.uint8))
    assert probabilities.shape == (3, 6)
    assert np.allclose(probabilities.sum(1), 1, atol=1e-4)


def test_config_sim_source_loads_truth_labels_split_by_study(tmp_path: Path) -> None:
    """Two one-view simulated studies (a left and a right cine): the config's sim source gives
    each candidate frame its view's side and the simulator's key-frame label, and the last
    study by id goes to validation whole."""
    for seed, side in ((21, "LCA"), (22, "RCA")):
        write_study(simulate_study(seed, views=[(side, 30.0, 0.0)]), tmp_path)
    config = load_config("keyframe", None, sim_dir=str(tmp_path), sim_val_studies=1)
    train, val = simulated_split(config)
    assert {f.group for f in train} == {"SIM0000000021"}
    assert {f.group for f in val} == {"SIM0000000022"}
    for frame in train + val:
        truth = json.loads((tmp_path / frame.group / "truth.json").read_text())
        view = truth["views"][0]
        assert frame.laterality == view["laterality"] and not frame.derived
        assert frame.quality == view["frames"]["keyframe"][frame.frame]
    assert {f.laterality for f in train} == {"LCA"} and {f.laterality for f in val} == {"RCA"}
    assert len({f.quality for f in train + val}) >= 2  # filling phases, not only full frames


@pytest.mark.slow
def test_training_steps_lower_the_loss_on_arcade(shared_data: Path, tmp_path: Path) -> None:
    """The project's loop, on 4 real ARCADE images (12 samples), lowers the loss on them."""
    config = load_config("keyframe", None, data_root=str(shared_data), out_dir=str(tmp_path),
                         train_limit=4, val_limit=2, batch_size=12, epochs=4, warmup_steps=1,
                         lr=1e-3, eval_every_epochs=4)
    task = KeyframeTraining(config)
    fixed = KeyframeDataset(task.train_set.frames, task.entry.preprocess, seed=5)
    inputs = torch.stack([fixed[i][0] for i in range(len(fixed))])
    targets = torch.tensor(fixed.targets())

    def loss() -> float:
        task.model.eval()
        with torch.inference_mode():
            return float(torch.nn.functional.cross_entropy(task.model(inputs), targets))

    before = loss()
    state = fit(task, config)
    assert state.global_step == 4
    assert loss() < before
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()


def test_choose_keyframes_reports_missing_side() -> None:
    def scored(frame: int, winner: str, p: float):
        scores = np.full(6, (1 - p) / 5)
        scores[CLASSES.index(winner)] = p
        return frame_score("cine", frame, scores)

    frames = [scored(0, "LCA_bad", 0.7), scored(5, "LCA_better", 0.6),
              scored(9, "LCA_better", 0.9), scored(12, "RCA_bad", 0.5)]
    result = choose_keyframes("study", frames, per_side=2)
    assert [s.frame for s in result.chosen["LCA"]] == [9, 5]
    assert "RCA" not in result.chosen and "none classified as RCA_better" in result.missing["RCA"]
    left_only = choose_keyframes("study", frames[:3])
    assert "no RCA injection" in left_only.missing["RCA"]
    assert json.loads(json.dumps(left_only.to_dict()))["keyframes"]["LCA"][0]["frame"] == 9


@needs_shipped
def test_shipped_model_picks_full_contrast_lca_frame_of_real_cine(shared_data: Path) -> None:
    study = read_studies(shared_data / CINE)[0]
    result = select_keyframes(study)
    labels = {f.frame: f.quality for f in labelled_cine_frames(LABELS, shared_data)}
    (chosen,) = result.chosen["LCA"]
    assert labels[chosen.frame] == "better"
    assert chosen.laterality == "LCA"


@needs_shipped
def test_cli_classify_and_keyframes_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "scores.jsonl"
    image = shared_data / "arcade/syntax/val/images/1.jpg"
    arguments = ["classify", str(image), str(shared_data / CINE), "--out", str(out)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    n_candidates = len(records) - 1
    assert records[0]["path"] == str(image) and records[0]["frame"] == 0
    assert n_candidates >= 2
    assert all(set(r) == {"path", "frame", "laterality", "keyframe", "scores"} for r in records)
    assert all(r["laterality"] in ("LCA", "RCA") and len(r["scores"]) == 6 for r in records)
    result = runner.invoke(app, ["keyframes", str(shared_data / CINE), "--json"])
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout.strip().splitlines()[-1])
    assert study["keyframes"]["LCA"][0]["laterality"] == "LCA"
    assert "RCA" in study["missing"]
    assert read_cine(shared_data / CINE).n_frames == 37


def test_report_has_group_bootstrap_cis() -> None:
    from angioscribe.evaluate.keyframe import keyframe_report

    true = [0, 0, 3, 3, 1, 4] * 5
    pred = [0, 1, 3, 3, 1, 0] * 5
    groups = [f"video{i // 3}" for i in range(30)]
    report = keyframe_report(true, pred, groups, n_resamples=200)
    laterality = report["accuracy_laterality"]
    assert laterality["value"] == pytest.approx(5 / 6)
    assert laterality["ci_low"] <= laterality["value"] <= laterality["ci_high"]
    assert laterality["ci_unit"] == "group"
    one_video = keyframe_report(true, pred, ["one"] * 30, n_resamples=100)
    assert one_video["f1_6class"]["ci_unit"] == "frame"


def test_cli_evaluate_keyframe_writes_metrics_and_figures(shared_data: Path,
                                                          tmp_path: Path) -> None:
    """End to end on real data with a random-weights artifact: every set gets the three
    figures of merit with CIs and a confusion PNG (values are meaningless here)."""
    entry = get_entry("keyframe-effnetl0")
    artifact = save_artifact(build_model(entry), entry, tmp_path / "random.safetensors")
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, [
        "evaluate", "keyframe", "--model", str(artifact), "--data", str(shared_data),
        "--labels", str(LABELS), "--val-limit", "3", "--resamples", "100", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "keyframe-metrics.json").read_text())
    assert set(report["sets"]) == {"arcade-val-real", "arcade-val-derived",
                                   "cine-clinical-lca-keyframes"}
    derived = report["sets"]["arcade-val-derived"]
    assert derived["data"]["frames"] == 9
    for name in ("f1_6class", "f1_laterality", "f1_keyframe", "accuracy_laterality"):
        metric = derived["metrics"][name]
        assert metric["ci_low"] <= metric["value"] <= metric["ci_high"]
    assert Path(derived["confusion_png"]).is_file()

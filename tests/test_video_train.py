"""Training, export, prediction and evaluation of the video model on tiny generated studies,
the MViT + BERT configuration, and one step on two processes (DDP over gloo)."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from typer.testing import CliRunner

from angioscribe.anatomy import DEEPCORO_SEGMENTS
from angioscribe.cli import app
from angioscribe.io import read_studies
from angioscribe.train.config import load_config
from angioscribe.train.loop import fit
from angioscribe.video.data import read_table
from angioscribe.video.predict import predict_study
from angioscribe.video.training import (
    VideoTraining,
    contrastive_loss,
    evaluate_table,
    export_best,
)
from angioscribe.video.zoo import create_video_model
from video_studies import TINY, write_studies


def tiny_config(tmp_path, table, cache_workers=1, **model):
    return load_config("video", None, out_dir=str(tmp_path / "run"), epochs=2, batch_size=2,
                       eval_every_epochs=1, threads=1, warmup_steps=1,
                       cache_workers=cache_workers,
                       model_config={**TINY, "table": str(table),
                                     "feature_cache": str(tmp_path / "cache"), **model})


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("studies"))


def test_table_reads_deepcoro_clip_schema(studies):
    records = read_table(studies)
    assert [r.split for r in records] == ["train"] * 4 + ["val"] * 2
    lad = DEEPCORO_SEGMENTS.index("Proximal LAD")
    assert records[0].labels[lad].tolist() == [100, 1, 1, 0, 0]
    assert [v.side for v in records[0].videos] == ["LCA", "RCA"]
    assert records[0].videos[0].text.startswith("LCA: Proximal LAD chronic")


@pytest.mark.slow
def test_train_resume_export_predict_evaluate(tmp_path, studies):
    config = tiny_config(tmp_path, studies, cache_workers=2)
    state = fit(VideoTraining(config), config)
    assert state.epoch == 2 and len(state.history) == 2
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 12  # one file per cine, written once (by two processes)
    longer = tiny_config(tmp_path, studies)
    longer = type(longer)(**{**longer.to_dict(), "epochs": 3})
    assert fit(VideoTraining(longer), longer, resume=True).history[0]["epoch"] == 1
    summary = export_best(config)
    artifact = tmp_path / "run" / "video-effnetl0.safetensors"
    assert summary["artifact"] == str(artifact)
    model, entry = create_video_model(str(artifact))
    assert entry.labels == DEEPCORO_SEGMENTS
    (study,) = read_studies(studies.parent / "s0")
    record = predict_study(model, study, "s0")
    assert set(record) == {"study", "path", "predictions"}
    assert [p["segment"] for p in record["predictions"]] == list(DEEPCORO_SEGMENTS)
    first = record["predictions"][0]
    assert set(first) == {"segment", "syntax", "stenosis_percent", "p_significant", "p_cto",
                          "p_thrombus", "p_calcification"}
    assert first["syntax"] == ["5"] and 0 <= first["stenosis_percent"] <= 100
    predictions = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(app, ["predict", str(studies.parent / "s0"),
                                      str(tmp_path / "missing"), "--model", str(artifact),
                                      "--out", str(predictions)])
    assert result.exit_code == 1  # one study predicted, one folder failed
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert lines[0]["predictions"] == record["predictions"]
    assert lines[1]["path"].endswith("missing") and "error" in lines[1]
    report = evaluate_table(model, studies, ("val",), None, tmp_path / "eval", n_boot=20)
    assert report["retrieval"]["text_to_video"]["candidates"] == 4
    assert all(os.path.getsize(path) > 0 for path in report["figures"])
    json.dumps(report)
    result = CliRunner().invoke(app, ["evaluate", "video", str(studies), "--model", str(artifact),
                                      "--split", "val", "--bootstrap", "10", "--json",
                                      "--cache", str(tmp_path / "eval-cache"), "--workers", "2",
                                      "--out", str(tmp_path / "cli-eval")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "eval-cache").rglob("*.npy"))) == 4  # 2 val studies x 2 cines
    assert (tmp_path / "cli-eval" / "metrics.json").is_file()
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["finding"] for row in rows} >= {"cto", "text_to_video", "video_to_text"}
    result = CliRunner().invoke(app, ["retrieve", "LCA: no stenosis.", str(studies.parent / "s1"),
                                      str(studies.parent / "s2"), "--model", str(artifact),
                                      "--top", "3", "--json"])
    assert result.exit_code == 0, result.output
    ranked = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["rank"] for row in ranked] == [1, 2, 3]
    assert ranked[0]["similarity"] >= ranked[1]["similarity"] >= ranked[2]["similarity"]


def test_mvit_and_bert_run_a_step_and_an_evaluation(tmp_path, studies):
    config = tiny_config(tmp_path, studies, video_encoder="mvit-v2-s", mvit_tiny=True,
                         loss="siglip", frames=4, size=32)
    config = type(config)(**{**config.to_dict(), "epochs": 1, "max_steps": 1})
    task = VideoTraining(config)
    assert type(task.model.video.net).__name__ == "MViT"
    assert type(task.model.text.bert).__name__ == "BertModel"
    state = fit(task, config)
    assert state.global_step == 1
    assert 0 <= task.evaluate(task.model)["text_to_video_recall@10"] <= 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _two_process_step(rank: int, port: int, table: str, out: str, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")
    from pathlib import Path

    config = tiny_config(Path(out), table)
    config = type(config)(**{**config.to_dict(), "epochs": 1, "max_steps": 1,
                             "batch_size": 1})
    task = VideoTraining(config)
    batch = next(iter(torch.utils.data.DataLoader(task.train_set, batch_size=1)))
    texts = batch["texts"][0].split("\x1e")
    outputs = task.model(batch["inputs"], batch["valid"], texts)
    seen = {}

    def spy(videos, text, match, scale):
        seen["shape"] = tuple(match.shape)
        return videos.sum() * 0

    import angioscribe.video.training as training

    training.clip_loss = spy
    contrastive_loss(outputs, texts, batch["valid"], batch["texts"], task.settings)
    state = fit(task, config)
    results.put((rank, seen["shape"], state.global_step))


@pytest.mark.slow
def test_two_processes_gather_negatives_and_train(tmp_path, studies):
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    processes = [context.Process(target=_two_process_step,
                                 args=(rank, port, str(studies), str(tmp_path), results))
                 for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():  # one died: its partner waits in a collective
            process.kill()
    assert codes == [0, 0]
    outcome = sorted(results.get(timeout=5) for _ in range(2))
    # each process has one study of two cines and two texts; gathered: 4 videos x 4 texts
    assert [shape for _, shape, _ in outcome] == [(4, 4), (4, 4)]
    assert [steps for _, _, steps in outcome] == [1, 1]


def test_cache_workers_write_the_features_the_parent_computes_and_name_a_bad_cine(tmp_path,
                                                                                  studies):
    import numpy as np

    from angioscribe.errors import InputError
    from angioscribe.io import read_cine
    from angioscribe.video.config import VideoConfig
    from angioscribe.video.features import (
        FeatureCache,
        FrameFeatureEncoder,
        cine_features,
        warm_feature_cache,
    )

    config = VideoConfig.from_dict(TINY)
    encoder = FrameFeatureEncoder(1, pretrained=False)  # random: workers must use these weights
    sources = [video.path for study in read_table(studies) for video in study.videos]
    cache = FeatureCache(tmp_path / "cache", config)
    warm_feature_cache(cache, sources, encoder, workers=2)
    for source in sources:
        expected = cine_features(read_cine(source), encoder, config).astype(np.float32)
        assert np.allclose(np.load(cache.path_for(source)), expected, atol=1e-2)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "00.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken"):
        warm_feature_cache(cache, [*sources, broken], encoder, workers=2)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(sources)

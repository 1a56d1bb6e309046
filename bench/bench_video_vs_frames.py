"""The study-level video model against the frame findings chain, on the same held-out studies.

Issue #25: `analyze` keeps the frame findings as the drafts' clues and the SR's measurements
unless the video model measures better on the same held-out studies. Both read the held-out
simulated studies of bench_findings_sim.py (`sim dataset --seed 2222`, `dataset_seeds(2222, N)`,
written by `write_dataset`; its tuning-seed guard, widened by the video model's training
studies, `sim videos --seed 2026`):

- frames: the chain as `angioscribe analyze` runs it (`ChainAnalysis`, shipped models), one
  finding per SYNTAX segment (`study_findings`), mapped to DeepCORO's 18 segments through
  `anatomy`: the worst % over the SYNTAX segments a DeepCORO segment covers, 100 % where it
  calls a total occlusion, 0 % where it has no finding (or one it could not measure);
- video: `predict_study` of the model given by --model, on the same cines.

Truth per (study, DeepCORO segment): the labels the video tables carry (`deepcoro_labels`, read
back from the dataset's deepcoro.csv by `video.data.read_table`); a segment the study's anatomy
lacks is not scored. On the same pairs: significant stenosis (>= 70 %, >= 50 % left main)
AUROC (video: p_significant; frames: its %), CTO AUROC (video: p_cto; frames: its %, 100 for a
CTO), % MAE and Pearson r. 95 % CIs resample patients (`bootstrap_ci`), and so does the
video-minus-frames difference of each metric (both readers on each resample): a reader is
better on a metric when that difference's CI excludes 0. The frame findings stay the clues
(AUROCs) and the measurements (MAE, r) unless the video model is better on one of the role's
metrics and worse on none. Per-segment metrics of both readers go to the JSON.

    cd bench && ../.venv/bin/python bench_video_vs_frames.py \
        --model ../runs/video-effnetl0-112/video-effnetl0.safetensors [--studies N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_findings_sim import DATASET_SEED, TUNING_SEEDS
from record import record
from rich.console import Console
from rich.table import Table

from angioscribe.analyze import Segmenters
from angioscribe.anatomy import DEEPCORO_SEGMENTS, deepcoro_to_syntax
from angioscribe.batch import attempt, json_safe
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.evaluate.findings_truth import (
    ChainAnalysis,
    StudyTruth,
    read_truth,
    sim_study_folders,
)
from angioscribe.io import read_cine
from angioscribe.keyframes.classify import KeyframeClassifier
from angioscribe.progress import progress
from angioscribe.sim import dataset_seeds, write_dataset
from angioscribe.study import Study
from angioscribe.video.data import read_table
from angioscribe.video.evaluate import auroc, mean_absolute_error, pearson_r, study_metrics
from angioscribe.video.predict import PROBABILITY_KEYS, predict_study
from angioscribe.video.study_model import FINDINGS, VideoStudyModel
from angioscribe.video.zoo import create_video_model

STUDIES = 48  # bench_findings_sim's recorded run (results/findings_sim.json)
VIDEO_DATASET_SEED = 2026  # the video models' training data (configs/video-effnetl0*.yaml)
SCORED = FINDINGS[:3]  # stenosis %, >= 70 %, CTO: what both readers give
# (metric, finding, statistic, higher is better); the AUROCs judge the clues, the rest the %.
METRICS: tuple[tuple[str, str, Callable[..., float], bool], ...] = (
    ("significant_auroc", "significant", auroc, True),
    ("cto_auroc", "cto", auroc, True),
    ("stenosis_mae", "stenosis_percent", mean_absolute_error, False),
    ("stenosis_pearson_r", "stenosis_percent", pearson_r, True),
)
ROLES = {"clues": ("significant_auroc", "cto_auroc"),
         "measurements": ("stenosis_mae", "stenosis_pearson_r")}
TABLE_WIDTH = 130


def held_out_seeds(count: int) -> list[int]:
    """bench_findings_sim's held-out study seeds; none the chain or the video model saw."""
    seeds = dataset_seeds(DATASET_SEED, count)
    seen = TUNING_SEEDS | set(dataset_seeds(VIDEO_DATASET_SEED, 1000))
    if seen & set(seeds):
        raise SystemExit(f"held-out seeds {sorted(seen & set(seeds))} were tuned or trained on")
    return seeds


def frame_scores(findings: list[dict[str, Any]]) -> np.ndarray:
    """(18, 5) scores of the chain's study findings per DeepCORO segment: its % (the worst of
    the SYNTAX segments the DeepCORO segment covers, 100 for a CTO, 0 with no measured finding)
    in the stenosis, significance and CTO columns; thrombus and calcification NaN."""
    by_syntax = {str(finding["segment"]): finding for finding in findings}
    scores = np.full((len(DEEPCORO_SEGMENTS), len(FINDINGS)), np.nan)
    for i, segment in enumerate(DEEPCORO_SEGMENTS):
        present = [by_syntax[n] for n in deepcoro_to_syntax[segment] if n in by_syntax]
        percent = max((100.0 if f["cto"] else f["stenosis_percent"] or 0.0 for f in present),
                      default=0.0)
        scores[i, : len(SCORED)] = percent
    return scores


def video_scores(model: VideoStudyModel, truth: StudyTruth) -> np.ndarray:
    """(18, 5) predictions of the video model from the study's cines (as analyze gives them)."""
    study = Study(truth.study_uid, [read_cine(path) for path in truth.cines])
    predictions = predict_study(model, study, str(truth.folder))["predictions"]
    return np.array([[p["stenosis_percent"], *(p[key] for key in PROBABILITY_KEYS)]
                     for p in predictions])


def compared(truth: np.ndarray, frames: np.ndarray, video: np.ndarray, groups: np.ndarray,
             statistic: Callable[..., float], higher_is_better: bool, n_boot: int
             ) -> dict[str, Any]:
    """Both readers' metric with its CI, and video minus frames with the CI of the paired
    difference; `better` names the reader whose side of 0 the whole CI lies on."""
    def interval(values: tuple[np.ndarray, ...], of: Callable[..., float]) -> dict[str, float]:
        found = bootstrap_ci(values, of, n=n_boot, groups=groups)
        return {"estimate": found.estimate, "low": found.low, "high": found.high}

    difference = interval((truth, video, frames),
                          lambda t, v, f: statistic(t, v) - statistic(t, f))
    sign = 1 if higher_is_better else -1
    lower, upper = sorted(sign * difference[end] for end in ("low", "high"))  # > 0: video
    better = "video" if lower > 0 else "frames" if upper < 0 else "neither"
    return {"frames": interval((truth, frames), statistic),
            "video": interval((truth, video), statistic),
            "video_minus_frames": difference, "better": better}


def comparison(labels: np.ndarray, frames: np.ndarray, video: np.ndarray,
               patients: list[str], n_boot: int) -> dict[str, dict[str, Any]]:
    """Every metric of `METRICS` on the (study, segment) pairs whose label is known."""
    groups = np.repeat(np.asarray(patients), len(DEEPCORO_SEGMENTS)).reshape(len(patients), -1)
    rows: dict[str, dict[str, Any]] = {}
    for name, finding, statistic, higher_is_better in METRICS:
        j = FINDINGS.index(finding)
        known = ~np.isnan(labels[..., j])
        truth = labels[..., j][known]
        row: dict[str, Any] = {"n": int(known.sum())}
        if statistic is auroc:
            truth = truth >= 0.5
            row["positives"] = int(truth.sum())
            if row["positives"] in (0, row["n"]):  # one class: no AUROC
                rows[name] = row | {"better": "one class"}
                continue
        rows[name] = row | compared(truth, frames[..., j][known], video[..., j][known],
                                    groups[known], statistic, higher_is_better, n_boot)
    return rows


def role_verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per role, "video" when the video model is better on one of its metrics and worse on
    none; otherwise the frame findings keep it ("frames")."""
    verdicts = {}
    for role, names in ROLES.items():
        better = {rows[name]["better"] for name in names}
        verdicts[role] = "video" if "video" in better and "frames" not in better else "frames"
    return verdicts


def per_segment_rows(labels: np.ndarray, frames: np.ndarray, video: np.ndarray
                     ) -> list[dict[str, Any]]:
    """A study's segments where the truth, the chain or the video model sees a lesion."""
    rows = []
    for i, segment in enumerate(DEEPCORO_SEGMENTS):
        percent, significant, cto = labels[i, : len(SCORED)]
        if not (percent > 0 or frames[i, 0] > 0 or video[i, 1] >= 0.5 or video[i, 2] >= 0.5):
            continue
        rows.append({"segment": segment,
                     "truth": None if np.isnan(percent) else
                     {"percent": percent, "significant": bool(significant), "cto": bool(cto)},
                     "frames_percent": frames[i, 0],
                     "video": {"percent": video[i, 0], "p_significant": video[i, 1],
                               "p_cto": video[i, 2]}})
    return rows


def print_table(rows: dict[str, dict[str, Any]], verdicts: dict[str, str], studies: int
                ) -> None:
    table = Table(title=f"Video model vs frame findings, {studies} held-out studies "
                        f"(95 % CI, patients resampled)")
    for column in ("metric", "pairs", "positives", "frames", "video", "video - frames",
                   "better"):
        table.add_column(column)

    def shown(value: dict[str, float] | None) -> str:
        return "" if value is None else \
            f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"

    for name, row in rows.items():
        table.add_row(name, str(row["n"]), str(row.get("positives", "")),
                      shown(row.get("frames")), shown(row.get("video")),
                      shown(row.get("video_minus_frames")), row["better"])
    console = Console(width=max(Console().width, TABLE_WIDTH))  # a log file gets all columns
    console.print(table)
    console.print("Keeps the drafts' clues: " + verdicts["clues"]
                  + "; keeps the SR's measurements: " + verdicts["measurements"])


def main(model_source: str, count: int, n_boot: int) -> None:
    torch.set_num_threads(1)
    seeds = held_out_seeds(count)
    model, entry = create_video_model(model_source)
    chain_seconds, video_seconds, per_study, failed = [], [], [], []
    labels, frames, video, patients = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-video-vs-frames-") as scratch:
        folder = Path(scratch)
        start = time.perf_counter()
        table = write_dataset(folder / "studies",
                              progress(seeds, "Simulating studies", total=count))
        simulate_seconds = (time.perf_counter() - start) / count
        truth_labels = {record.study: record for record in read_table(table)}
        chain = ChainAnalysis(folder / "analysis", KeyframeClassifier.load(), Segmenters.load())
        studies = sim_study_folders(folder / "studies")
        for study_folder in progress(studies, "Reading studies (frames, video)",
                                     total=len(studies)):
            truth = read_truth(study_folder)
            start = time.perf_counter()
            analysis, chain_error = attempt(study_folder, lambda t=truth: chain(t))
            chain_seconds.append(time.perf_counter() - start)
            start = time.perf_counter()
            predicted, video_error = attempt(study_folder,
                                             lambda t=truth: video_scores(model, t))
            video_seconds.append(time.perf_counter() - start)
            if analysis is None or predicted is None:
                failed += [{"study": study_folder.name,
                            "errors": [e["error"] for e in (chain_error, video_error) if e]}]
                continue
            known = truth_labels[truth.study_uid]
            labels.append(known.labels)
            frames.append(frame_scores(analysis["study_findings"]))
            video.append(predicted)
            patients.append(known.patient)
            per_study.append({"study": study_folder.name, "seed": truth.seed,
                              "patient": known.patient,
                              "segments": per_segment_rows(labels[-1], frames[-1], video[-1])})
    scored = np.stack(labels)
    scored[..., len(SCORED):] = np.nan  # thrombus and calcification: the chain gives neither
    rows = comparison(scored, np.stack(frames), np.stack(video), patients, n_boot)
    verdicts = role_verdicts(rows)
    print_table(rows, verdicts, len(patients))
    metrics: dict[str, Any] = {
        "dataset_seed": DATASET_SEED,
        "studies": count,
        "studies_scored": len(patients),
        "video_model": {"source": model_source, "name": entry.name,
                        "size": model.config.size},
        **{f"{name}_{reader}": round(row[reader]["estimate"], 3)
           for name, row in rows.items() for reader in ("frames", "video") if reader in row},
        **{f"{role}_kept_by": reader for role, reader in verdicts.items()},
        "seconds_per_study_simulate": round(simulate_seconds, 1),
        "seconds_per_study_frames_median": round(statistics.median(chain_seconds), 1),
        "seconds_per_study_video_median": round(statistics.median(video_seconds), 1),
        "comparison": rows,
        "readers": {"frames": study_metrics(np.stack(frames), scored, patients, n_boot),
                    "video": study_metrics(np.stack(video), scored, patients, n_boot)},
        "failed": failed,
        "per_study": per_study,
    }
    path = record("video_vs_frames", json_safe(metrics),
                  notes=f"frame findings chain (shipped models) and video model {model_source} "
                        f"(1 torch thread) on the held-out studies of `sim dataset --seed "
                        f"{DATASET_SEED}`, scored on the same (study, DeepCORO segment) pairs "
                        f"against deepcoro_labels; better = the paired patient-bootstrap CI "
                        f"of video - frames excludes 0")
    print(f"wrote {path}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="video model: .safetensors from `angioscribe train video`, or a "
                             "registered name")
    parser.add_argument("--studies", type=int, default=STUDIES,
                        help=f"held-out studies (default {STUDIES})")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    main(arguments.model, arguments.studies, arguments.bootstrap)

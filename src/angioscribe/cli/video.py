"""`angioscribe predict` / `retrieve` / `evaluate video`: the study-level video model.

`predict STUDY... --out F.jsonl` writes one JSON line per study (`study`, `path`,
`predictions` per DeepCORO segment) and an error line (`path`, `error`) per study folder it
could not read; exit code 0 all predicted, 1 some failed, 3 none. `retrieve TEXT STUDY...` ranks
the cines of the studies by similarity to a report text. torch and the model are imported
inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from angioscribe.batch import error_record, to_json
from angioscribe.cli.contract import RecordSink, finish
from angioscribe.cli.output import JsonOption, print_records, progress, stderr
from angioscribe.cli.refusal import refuse
from angioscribe.errors import AngioscribeError, InputError

if TYPE_CHECKING:
    from angioscribe.study import Study
    from angioscribe.video.features import FeatureCache
    from angioscribe.video.study_model import VideoStudyModel

DEFAULT_MODEL = "video-effnetl0"
ModelOption = Annotated[str, typer.Option(
    "--model", help="Registered video model, hf-hub:ORG/REPO or .safetensors path.")]
CacheOption = Annotated[Path | None, typer.Option(
    "--cache", help="Folder caching per-frame features (reused across runs).")]
StudiesArgument = Annotated[list[Path], typer.Argument(
    help="Study folders (each holds the cines of one or more studies).")]
RETRIEVE_COLUMNS = ("rank", "similarity", "study", "path")


def _load(model: str, cache: Path | None) -> tuple[VideoStudyModel, FeatureCache | None]:
    from angioscribe.video.features import FeatureCache
    from angioscribe.video.zoo import create_video_model

    network, _ = create_video_model(model)
    store = FeatureCache(cache, network.config) if cache and network.config.cached_features \
        else None
    return network, store


def _studies(folder: Path) -> list[Study]:
    from angioscribe.io import read_studies

    if not folder.is_dir():
        raise InputError(folder, "not a folder of cines")
    studies = read_studies(folder, unread=[])
    if not studies:
        raise InputError(folder, "no readable cine in this folder")
    return studies


def predict(
    studies: StudiesArgument,
    out: Annotated[Path, typer.Option("--out", help="JSON-lines file to write.")],
    model: ModelOption = DEFAULT_MODEL,
    cache: CacheOption = None,
) -> None:
    """Per-segment stenosis %, >= 70 % stenosis, CTO, thrombus and calcification for each
    study, from all its cines (docs/video.md). Exit code 0 when every study was predicted, 1
    when some failed, 3 when none was or the model cannot be loaded."""
    from angioscribe.video.predict import predict_study

    try:
        network, store = _load(model, cache)
    except AngioscribeError as error:
        refuse(error, source=model)
    done = failed = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as stream:
        for folder in progress(studies, "Predicting studies", total=len(studies)):
            try:
                records = [predict_study(network, study, str(folder), store)
                           for study in _studies(folder)]
            except AngioscribeError as error:
                records = [error_record(getattr(error, "source", folder),
                                        getattr(error, "problem", str(error)))]
                failed += 1
            else:
                done += 1
            for record in records:
                stream.write(to_json(record) + "\n")
    stderr.print(f"{done} of {done + failed} study folders predicted: {out}")
    finish(done, failed)


def retrieve(
    text: Annotated[str, typer.Argument(help="A report text, e.g. 'Proximal LAD 90% stenosis'.")],
    studies: StudiesArgument,
    model: ModelOption = DEFAULT_MODEL,
    top: Annotated[int, typer.Option("--top", min=1, help="How many cines to list.")] = 10,
    cache: CacheOption = None,
    as_json: JsonOption = False,
) -> None:
    """The cines of STUDY... most similar to TEXT in the model's shared space, best first.
    Exit code 0 when ranked, 3 when no study could be read or the model cannot be loaded
    (a folder that cannot be read is reported and skipped)."""
    import numpy as np

    from angioscribe.video.predict import embed_cines, embed_texts

    try:
        network, store = _load(model, cache)
    except AngioscribeError as error:
        refuse(error, as_json, source=model)
    cines, keys, read = [], [], 0
    with RecordSink(as_json, RETRIEVE_COLUMNS, title=text) as sink:
        for folder in studies:
            try:
                found = _studies(folder)
            except AngioscribeError as error:
                sink.fail(folder, getattr(error, "problem", str(error)))
                continue
            read += 1
            for study in found:
                cines += study.cines
                keys += [study.key] * len(study.cines)
        if cines:
            similarity = embed_cines(network, cines, store) @ embed_texts(network, [text])[0]
            for rank, i in enumerate(np.argsort(-similarity)[:top], start=1):
                sink.emit({"rank": rank, "similarity": round(float(similarity[i]), 4),
                           "study": keys[i], "path": cines[i].source}, inputs=0)
        sink.done += read  # the ranked lines are one result of all the folders read


def evaluate_video(
    table: Annotated[Path, typer.Argument(help="Video CSV with labels (docs/video.md).")],
    model: ModelOption = DEFAULT_MODEL,
    split: Annotated[list[str] | None, typer.Option(
        "--split", help="Table split(s) to score (default: test).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for metrics.json and figures.")]
    = Path("video-evaluation"),
    cache: CacheOption = None,
    n_boot: Annotated[int, typer.Option("--bootstrap", min=10,
                                        help="Bootstrap samples for the CIs.")] = 1000,
    workers: Annotated[int, typer.Option("--workers", min=1, help=(
        "Processes (one thread each) that fill the --cache before scoring."))] = 1,
    as_json: JsonOption = False,
) -> None:
    """Per-segment and per-finding AUROC, AUPRC, sensitivity/specificity at Youden, MAE and
    Pearson r with patient-level bootstrap CIs, and retrieval both ways with chance levels, on
    the studies of TABLE in SPLIT, and serial studies of one patient against different
    patients' (embedding distances); writes OUT/metrics.json, roc.png, retrieval.png,
    embeddings.png and serial.png. Exit code 0 when scored, 2 on a usage error, 3 when the
    table or model cannot be used (the error names it)."""
    from angioscribe.video.training import evaluate_table

    try:
        network, _ = _load(model, None)
        report = evaluate_table(network, table, tuple(split or ["test"]),
                                str(cache) if cache else None, out, n_boot, workers)
    except AngioscribeError as error:
        refuse(error, as_json, source=table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print_records(summary_rows(report), as_json, ("finding", "n", "positives", "auroc",
                                                  "mae", "recall@10", "chance"))


def summary_rows(report: dict) -> list[dict]:
    """One row per finding (pooled) and per retrieval direction, for the table or --json."""
    rows = []
    for finding, values in report["findings"].items():
        if not isinstance(values, dict):
            continue
        pooled = values["pooled"]
        metric = pooled.get("auroc") or pooled.get("mae") or {}
        row = {"finding": finding, "n": pooled["n"], "positives": pooled.get("positives", "")}
        key = "auroc" if "auroc" in pooled else "mae"
        row[key] = (f"{metric['estimate']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"
                    if metric else "")
        rows.append(row)
    for direction, values in report["retrieval"].items():
        rows.append({"finding": direction, "n": values["queries"],
                     "recall@10": f"{values['recall@10']:.3f}",
                     "chance": f"{values['chance_recall@10']:.3f}"})
    serial = report.get("serial", {})
    if "same_patient_auroc" in serial:  # serial pairs closer than different patients' studies
        rows.append({"finding": "serial_same_patient", "n": serial["serial_pairs"],
                     "auroc": f"{serial['same_patient_auroc']:.3f}"})
    return rows

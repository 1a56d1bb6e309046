"""`angioscribe evaluate ...`: score predictions with the metric their benchmark defines.

Each subcommand computes one result from all its inputs, so an input it cannot use stops it
with an error naming the input and exit code 3 (`angioscribe.cli.refusal`); 0 means scored,
2 a usage error. Metrics, models and plotting are imported inside the commands.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.batch import attempt
from angioscribe.cli import reports, video
from angioscribe.cli.output import print_records
from angioscribe.cli.refusal import refuse
from angioscribe.errors import AngioscribeError, InputError

if TYPE_CHECKING:
    from angioscribe.evaluate.findings_truth import ChainAnalysis, StudyComparison

app = typer.Typer(
    no_args_is_help=True,
    help="Evaluation: metrics computed exactly as their benchmarks define them.",
)
app.command("reports")(reports.evaluate_reports)
app.command("vlscore-calibrate")(reports.vlscore_calibrate)
app.command("video")(video.evaluate_video)


DEFAULT_DATA = Path("../shared/data")
DataOption = Annotated[
    Path, typer.Option("--data", help="Shared data folder (holding arcade/ and the cines).")
]


class ArcadeTask(StrEnum):
    syntax = "syntax"
    stenosis = "stenosis"


@app.command("arcade")
def arcade(
    gt: Annotated[Path, typer.Argument(help="Ground-truth COCO JSON (ARCADE annotations).")],
    pred: Annotated[
        Path, typer.Argument(help="Predicted COCO JSON (images, categories, annotations).")
    ],
    task: Annotated[ArcadeTask, typer.Option("--task", help="ARCADE task to score.")],
    breakdown: Annotated[
        bool,
        typer.Option("--breakdown", help="Also where the F1 is lost: stenosis by lesion count, "
                                         "syntax by segment (docs/metrics.md)."),
    ] = False,
    figure: Annotated[
        Path | None, typer.Option("--figure", help="Write the breakdown as a PNG bar chart.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout, with per-image scores.")
    ] = False,
) -> None:
    """The ARCADE challenge's official F1 of PRED against GT (rules: docs/metrics.md).

    Files of the other task (stenosis category 26 scored as syntax, segments 1-25 as stenosis)
    are refused. Exit code 0 when scored, 2 on a usage error, 3 when a file cannot be used
    (unreadable, malformed, wrong task: the error names it).
    """
    from angioscribe.data.arcade import read_coco
    from angioscribe.evaluate.arcade_breakdown import (
        STENOSIS_COLUMNS,
        SYNTAX_COLUMNS,
        arcade_breakdown,
        plot_breakdown,
    )
    from angioscribe.evaluate.arcade_metric import arcade_f1

    try:
        gt_coco, pred_coco = read_coco(gt), read_coco(pred)
        score = arcade_f1(gt_coco, pred_coco, task.value, gt_source=str(gt),
                          pred_source=str(pred))
    except InputError as error:
        refuse(error, as_json)
    if score.unmatched_predictions:
        typer.echo(
            f"warning: {len(score.unmatched_predictions)} prediction images match no ground-truth "
            f"file_name (e.g. {score.unmatched_predictions[0]}) and were ignored",
            err=True,
        )
    if score.unscored:
        typer.echo(
            f"note: {len(score.unscored)} ground-truth images have no annotations and are not "
            f"scored (the official script cannot score them), e.g. {score.unscored[0]}",
            err=True,
        )
    record = {
        "path": str(pred),
        "ground_truth": str(gt),
        "task": task.value,
        "f1": score.f1,
        "images": len(score.per_image),
        "unscored": list(score.unscored),
        "unmatched_predictions": list(score.unmatched_predictions),
        "per_image": score.per_image,
    }
    rows = arcade_breakdown(gt_coco, pred_coco, task.value) if breakdown or figure else []
    if breakdown:
        record["breakdown"] = rows
    print_records([record], as_json, ("task", "images", "f1"))
    if breakdown and not as_json:
        print_records(rows, False, STENOSIS_COLUMNS if task == "stenosis" else SYNTAX_COLUMNS)
    if figure is not None:
        typer.echo(f"breakdown figure: {plot_breakdown(rows, task.value, figure)}", err=True)


class LesionSet(StrEnum):
    annotated = "annotated"
    pseudo = "pseudo"


@app.command("naming")
def naming(
    model: Annotated[
        str, typer.Option("--model", help="SYNTAX model: registered name, hf-hub: id or path.")
    ] = "syntax-seg",
    data: DataOption = DEFAULT_DATA,
    lesions: Annotated[
        LesionSet, typer.Option("--lesions", help="annotated: ARCADE's stenoses on frames the "
                                "syntax val split labels too; pseudo: lesion-sized discs in "
                                "every segment of syntax val.")
    ] = LesionSet.annotated,
    per_segment: Annotated[
        int, typer.Option("--per-segment", min=1, help="Pseudo-lesions per annotated segment.")
    ] = 2,
    limit: Annotated[
        int | None, typer.Option("--limit", help="First N frames only.")
    ] = None,
    figure: Annotated[
        Path | None, typer.Option("--figure", help="Write the naming confusion matrix (PNG).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """How often findings name the right segment and vessel for ARCADE lesions
    (docs/segmentation.md). Exit code 0 when measured, 2 on a usage error, 3 when the model or
    data cannot be used."""
    from angioscribe.data.arcade import load_arcade
    from angioscribe.data.lookalike import frames_in_both_tasks
    from angioscribe.evaluate.segment_naming import (
        name_annotated_lesions,
        name_pseudo_lesions,
        naming_rates,
        plot_naming_confusion,
        segmenter_output,
    )
    from angioscribe.models.segmenter import Segmenter

    try:
        syntax = Segmenter.from_name(model)
        if lesions is LesionSet.annotated:
            pairs = frames_in_both_tasks(data, syntax_split="val")[:limit]
            named = name_annotated_lesions(pairs, segmenter_output(syntax), syntax.entry.label_ids)
        else:
            images = load_arcade(data, "syntax", "val").images[:limit]
            named = name_pseudo_lesions(images, segmenter_output(syntax), syntax.entry.label_ids,
                                        per_segment)
    except (AngioscribeError, ValueError) as error:
        refuse(error, as_json, source=model)
    print_records(naming_rates(named), as_json,
                  ("lesions", "n", "segment_right", "segment_right_ci", "vessel_right",
                   "vessel_right_ci", "unassigned"))
    if figure is not None:
        described = {LesionSet.annotated: "ARCADE stenoses on frames of syntax val",
                     LesionSet.pseudo: "ARCADE syntax val pseudo-lesions"}[lesions]
        path = plot_naming_confusion(named, figure, described)
        typer.echo(f"naming confusion matrix: {path}", err=True)


@app.command("agreement")
def agreement(
    task: Annotated[ArcadeTask, typer.Option("--task", help="ARCADE task.")] = ArcadeTask.stenosis,
    data: DataOption = DEFAULT_DATA,
    splits: Annotated[
        list[str] | None, typer.Option("--split", help="Split(s) to search; default train, val.")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0,
                            help="Look-alike correlation at which two frames are one view.")
    ] = 0.99,
    figure: Annotated[
        Path | None, typer.Option("--figure", help="Write the closest pairs, outlined (PNG).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Frames of one view annotated twice in ARCADE (identical or neighbouring cine frames), and
    the official F1 of one's annotations against the other's: how consistent the labels are,
    and which val frames training saw (docs/metrics.md). Exit code 0 when measured, 2 on a
    usage error, 3 when the data cannot be read."""
    from angioscribe.data.arcade import load_arcade
    from angioscribe.evaluate.label_agreement import (
        agreement_summary,
        find_repeated_views,
        listed_frames,
        plot_repeated_views,
    )

    try:
        loaded = [load_arcade(data, task.value, split) for split in splits or ["train", "val"]]
        views = find_repeated_views(listed_frames(loaded), task.value, threshold)
    except AngioscribeError as error:
        refuse(error, as_json, source=data)
    print_records([view.to_dict() for view in views], as_json,
                  ("first", "second", "correlation", "identical", "annotations",
                   "f1_first_as_truth", "f1_second_as_truth"))
    print_records(agreement_summary(views), as_json,
                  ("pairs", "n", "mean_f1", "median_f1", "across_splits"))
    if figure is not None:
        typer.echo(f"repeated views: {plot_repeated_views(views, figure)}", err=True)


@app.command("sides")
def sides(
    keyframe_model: Annotated[
        str, typer.Option("--keyframe-model", help="Key-frame classifier: name, hf-hub: or path.")
    ] = "keyframe-effnetl0",
    syntax_model: Annotated[
        str, typer.Option("--syntax-model", help="SYNTAX model: name, hf-hub: id or path.")
    ] = "syntax-seg",
    data: DataOption = DEFAULT_DATA,
    limit: Annotated[int | None, typer.Option("--limit", help="First N frames only.")] = None,
    frames: Annotated[
        bool, typer.Option("--frames", help="Also list the frames where the two differ.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Left or right coronary, by the key-frame classifier and by the SYNTAX segments, against
    ARCADE syntax val's annotated side: the evidence behind `analyze`'s `side_conflict` flag
    (docs/segmentation.md). Exit code 0 when measured, 2 on a usage error, 3 when a model or
    the data cannot be used."""
    from angioscribe.data.arcade import load_arcade
    from angioscribe.evaluate.side_agreement import frame_sides, side_rates
    from angioscribe.keyframes.classify import KeyframeClassifier
    from angioscribe.models.segmenter import Segmenter

    try:
        images = load_arcade(data, "syntax", "val").images[:limit]
        found = frame_sides(images, KeyframeClassifier.load(keyframe_model),
                            Segmenter.from_name(syntax_model))
    except (AngioscribeError, ValueError) as error:
        refuse(error, as_json, source=data)
    if frames:
        print_records([s.to_dict() for s in found if s.differ], as_json,
                      ("frame", "truth", "classifier", "segments"))
    print_records(side_rates(found), as_json, ("side_from", "frames", "right", "right_ci",
                                                "untold", "classifier_right", "segments_right"))


KEYFRAME_COLUMNS = ("set", "n", "f1_6class", "f1_laterality", "f1_keyframe", "accuracy_6class",
                    "accuracy_laterality")


@app.command("keyframe")
def keyframe(
    model: Annotated[
        str, typer.Option("--model", help="Registered name, hf-hub: id or .safetensors path.")
    ] = "keyframe-effnetl0",
    data: DataOption = DEFAULT_DATA,
    labels: Annotated[
        list[Path] | None,
        typer.Option("--labels", help="Labelled-cine CSV(s); default labels/*-keyframes.csv."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for keyframe-metrics.json and figures.")
    ] = Path("keyframe-eval"),
    resamples: Annotated[
        int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")
    ] = 1000,
    val_limit: Annotated[
        int | None, typer.Option("--val-limit", help="First N ARCADE val images only.")
    ] = None,
    sim: Annotated[
        list[Path] | None,
        typer.Option("--sim", help="Folder(s) of simulated studies (truth.json + dicom/)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Full report as one JSON object.")
    ] = False,
) -> None:
    """CAG-VLM's figures of merit (6-class, laterality and 3-class key-frame weighted F1) and
    accuracy, with bootstrap 95 % CIs and confusion-matrix PNGs, on ARCADE val and labelled
    cines (docs/keyframes.md). Exit code 0 when measured, 2 on a usage error, 3 when the model,
    a label file or the data cannot be used."""
    from angioscribe.cli.output import to_json
    from angioscribe.keyframes.classify import KeyframeClassifier
    from angioscribe.keyframes.evaluation import evaluate_classifier, evaluation_sets

    label_files = labels if labels else sorted(Path("labels").glob("*-keyframes.csv"))
    try:
        classifier = KeyframeClassifier.load(model)
        sets = evaluation_sets(data, label_files, val_limit=val_limit, sim_folders=sim)
        report = evaluate_classifier(classifier, sets, out, n_resamples=resamples)
    except (AngioscribeError, ValueError) as error:
        refuse(error, as_json, source=model)
    (out / "keyframe-metrics.json").write_text(to_json(report) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(to_json(report))
        return
    rows = [{"set": name, "n": int(result["metrics"]["n"]["value"]),
             **{key: _with_ci(result["metrics"][key]) for key in KEYFRAME_COLUMNS[2:]}}
            for name, result in report["sets"].items()]
    print_records(rows, False, KEYFRAME_COLUMNS)
    typer.echo(f"figures and keyframe-metrics.json in {out}", err=True)


def _with_ci(metric: dict[str, float]) -> str:
    return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


FINDINGS_STUDY_COLUMNS = ("study", "truth", "findings", "found", "false")
FINDINGS_METRIC_COLUMNS = ("metric", "n", "value", "ci95", "target", "met")


@app.command("findings")
def findings(
    paths: Annotated[list[Path], typer.Argument(
        help="Simulated studies or datasets: folders with truth.json (`angioscribe sim study` "
             "or `sim dataset` output).")],
    analysis: Annotated[Path | None, typer.Option(
        "--analysis", help="analysis.json of `angioscribe analyze` over these studies; "
                           "default: run the chain on them now.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for findings-metrics.json, findings-lesions.csv and "
                      "findings-truth.png; also analysis.json and figures when the chain "
                      "runs.")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=100,
                                           help="Bootstrap resamples.")] = 1000,
    as_json: Annotated[bool, typer.Option(
        "--json", help="JSON lines on stdout: one per study, then one per metric.")] = False,
) -> None:
    """The study findings of `analyze` against the simulator's truth: truth lesions found at
    their segment (all, significant >= 50 %, total occlusions), the % stenosis error of those
    found, false findings; 95 % bootstrap CIs over patients (docs/findings-evaluation.md).

    A study that cannot be scored (no truth.json, not in the analysis, no cine read) is an
    error record and the rest go on. Exit code 0 when every study was scored, 1 when some
    failed, 2 on a usage error, 3 when none was (or the analysis or the models cannot be used).
    """
    import tempfile

    from angioscribe.cli.contract import finish
    from angioscribe.evaluate.findings_truth import (
        AnalysisFile,
        compare_folder,
        findings_metrics,
        sim_study_folders,
    )

    records, comparisons = [], []

    def keep(record: dict[str, Any], comparison: StudyComparison | None = None) -> None:
        records.append(record)
        comparisons.extend([comparison] if comparison else [])
        if as_json:
            print_records([record], True, ())

    with tempfile.TemporaryDirectory(prefix="angioscribe-findings-") as scratch:
        try:
            analysis_of = (AnalysisFile(analysis) if analysis is not None
                           else _chain_analysis(out or Path(scratch), keep=out is not None))
        except (AngioscribeError, ValueError) as error:
            refuse(error, as_json, source=analysis or "models")
        for path in paths:
            folders, error = attempt(path, lambda path=path: sim_study_folders(path))
            if error is not None:
                keep(error)
            for folder in folders or []:
                comparison, error = attempt(folder, lambda f=folder: compare_folder(
                    f, analysis_of))
                keep(comparison.to_record() if comparison else error, comparison)
    if not as_json:
        print_records(records, False, FINDINGS_STUDY_COLUMNS)
    if comparisons:
        metrics = findings_metrics(comparisons, resamples)
        print_records(metrics, as_json, FINDINGS_METRIC_COLUMNS)
        if out is not None:
            _write_findings_evaluation(comparisons, metrics, records, out)
    finish(len(comparisons), len(records) - len(comparisons))


def _chain_analysis(out_dir: Path, keep: bool) -> ChainAnalysis:
    """The chain with the shipped models, loaded once for every study."""
    from angioscribe.analyze import Segmenters
    from angioscribe.evaluate.findings_truth import ChainAnalysis
    from angioscribe.keyframes.classify import KeyframeClassifier

    return ChainAnalysis(out_dir, KeyframeClassifier.load(), Segmenters.load(), keep)


def _write_findings_evaluation(comparisons: list[StudyComparison],
                               metrics: list[dict[str, Any]], records: list[dict[str, Any]],
                               out: Path) -> None:
    """The metrics and study records as JSON, one CSV row per lesion, the figure."""
    from angioscribe.cli.output import to_json
    from angioscribe.evaluate.findings_truth import plot_findings_truth, write_lesions_csv

    out.mkdir(parents=True, exist_ok=True)
    (out / "findings-metrics.json").write_text(
        to_json({"metrics": metrics, "studies": records}) + "\n", encoding="utf-8")
    write_lesions_csv(comparisons, out / "findings-lesions.csv")
    plot_findings_truth(comparisons, out / "findings-truth.png")
    typer.echo(f"findings-metrics.json, findings-lesions.csv, findings-truth.png in {out}",
               err=True)

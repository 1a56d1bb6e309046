"""`angioscribe train ...`: train the project's models with its own recipe and data.

Each command prints one JSON record: the exported artifact, or (exit code 3) the error naming
the config, data or checkpoint it could not use. torch and the training code are imported
inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from angioscribe.cli.evaluate import ArcadeTask
from angioscribe.cli.output import stderr, to_json
from angioscribe.cli.refusal import refuse
from angioscribe.errors import AngioscribeError

app = typer.Typer(no_args_is_help=True, help="Training: the shipped models' recipes.")

# Every training command takes the same run controls.
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML/JSON file overriding TrainConfig.")
]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Continue from OUT_DIR/last.pt exactly.")
]
ExportOnlyOption = Annotated[
    bool, typer.Option("--export-only", help="Skip training; export best.pt (else last.pt).")
]
ExportToOption = Annotated[
    Path | None, typer.Option("--export-to", help="Artifact path (default OUT_DIR/NAME).")
]
CheckpointOption = Annotated[
    Path | None, typer.Option("--checkpoint", help="Export this checkpoint, not best.pt.")
]


@app.command("segment")
def segment(
    task: Annotated[ArcadeTask, typer.Option("--task", help="ARCADE task to train.")],
    config: ConfigOption = None,
    resume: ResumeOption = False,
    export_only: ExportOnlyOption = False,
    export_to: ExportToOption = None,
    checkpoint: CheckpointOption = None,
) -> None:
    """Train a segmentation model on ARCADE train, select on val, export fp16 safetensors.

    After training, post-processing thresholds are tuned on val (its first `val_limit` images)
    with the official metric and written into the artifact; export.json in OUT_DIR records the
    val F1. The export takes best.pt, or last.pt when no evaluation ran (`max_steps` spent
    first). Exit code 0 when exported, 2 on a usage error, 3 when the config, data or
    checkpoint cannot be used (the error names it).
    """
    from angioscribe.train import segmentation

    report = _train_and_export(
        task.value,
        segmentation.SegmentationTraining,
        segmentation.export_best,
        config,
        resume,
        export_only,
        export_to,
        checkpoint,
    )
    print(to_json({key: report[key] for key in ("model", "artifact", "val_f1", "epoch")}))


@app.command("keyframe")
def keyframe(
    config: ConfigOption = None,
    resume: ResumeOption = False,
    export_only: ExportOnlyOption = False,
    export_to: ExportToOption = None,
    checkpoint: CheckpointOption = None,
) -> None:
    """Train the key-frame/laterality classifier (six classes) on ARCADE train with derived
    bad/other frames (plus simulated studies if the config sets sim_dir), select on ARCADE val,
    export fp16 safetensors (docs/keyframes.md). Exit code 0 when exported, 2 on a usage error,
    3 when the config, data or checkpoint cannot be used (the error names it)."""
    from angioscribe.keyframes import training

    report = _train_and_export(
        "keyframe",
        training.KeyframeTraining,
        training.export_best,
        config,
        resume,
        export_only,
        export_to,
        checkpoint,
    )
    print(to_json({key: report[key] for key in ("model", "artifact", "epoch")}))


@app.command("report")
def report(
    config: ConfigOption = None,
    resume: ResumeOption = False,
    export_only: ExportOnlyOption = False,
    export_to: ExportToOption = None,
    checkpoint: CheckpointOption = None,
) -> None:
    """Train a report drafter (LoRA + projector, one language) on a report corpus (JSONL),
    select on its val loss, export the adapter with a model card (docs/vlm-drafters.md)."""
    from angioscribe.train import report as report_training

    result = _train_and_export(
        "report",
        report_training.ReportTraining,
        report_training.export_best,
        config,
        resume,
        export_only,
        export_to,
        checkpoint,
    )
    print(to_json({key: result[key] for key in
                   ("model", "artifact", "val_loss", "seconds_per_draft", "epoch")}))


@app.command("video")
def video(
    config: ConfigOption = None,
    resume: ResumeOption = False,
    export_only: ExportOnlyOption = False,
    export_to: ExportToOption = None,
    checkpoint: CheckpointOption = None,
) -> None:
    """Train the study-level video model (video-text contrastive + per-segment heads) on a
    video CSV (`model_config.table`), select on its val split, export the trained weights
    with their validation metrics (docs/video.md)."""
    from angioscribe.video import training as video_training

    result = _train_and_export(
        "video",
        video_training.VideoTraining,
        video_training.export_best,
        config,
        resume,
        export_only,
        export_to,
        checkpoint,
    )
    print(to_json({key: result[key] for key in ("model", "artifact", "epoch")}))


def _train_and_export(
    task: str,
    make_training: Callable[[Any], Any],
    export_best: Callable[..., dict[str, Any]],
    config: Path | None,
    resume: bool,
    export_only: bool,
    export_to: Path | None,
    checkpoint: Path | None,
) -> dict[str, Any]:
    """The flow every training command shares: config -> fit (unless export-only) -> export.
    A config, data or checkpoint it cannot use ends it with exit code 3, naming that input."""
    from angioscribe.train.config import load_config
    from angioscribe.train.loop import fit

    try:
        settings = load_config(task, config)
        if not export_only:
            state = fit(make_training(settings), settings, resume=resume)
            stderr.print(f"trained to epoch {state.epoch}, step {state.global_step}; "
                         + (f"best val score {state.best_score:.4f}" if state.history
                            else "no evaluation yet"))
        return export_best(settings, checkpoint=checkpoint, destination=export_to)
    except AngioscribeError as error:
        refuse(error, True, source=config or task)

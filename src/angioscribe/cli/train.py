"""`angioscribe train ...`: train the project's models with its own recipe and data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from angioscribe.cli.evaluate import ArcadeTask
from angioscribe.cli.output import stderr, to_json

app = typer.Typer(no_args_is_help=True, help="Training: the shipped models' recipes.")

# Every training command takes the same run controls.
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML/JSON file overriding TrainConfig.")
]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Continue from OUT_DIR/last.pt exactly.")
]
ExportOnlyOption = Annotated[
    bool, typer.Option("--export-only", help="Skip training; export best.pt.")
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

    After training, post-processing thresholds are tuned on val with the official metric and
    written into the artifact; export.json in OUT_DIR records the val F1.
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
    export fp16 safetensors (docs/keyframes.md)."""
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
    """The flow every training command shares: config -> fit (unless export-only) -> export."""
    from angioscribe.train.config import load_config
    from angioscribe.train.loop import fit

    settings = load_config(task, config)
    if not export_only:
        state = fit(make_training(settings), settings, resume=resume)
        stderr.print(f"trained to epoch {state.epoch}; best val score {state.best_score:.4f}")
    return export_best(settings, checkpoint=checkpoint, destination=export_to)

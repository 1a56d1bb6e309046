"""`angioscribe train ...`: train the project's models with its own recipe and data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    from angioscribe.train.config import load_config
    from angioscribe.train.loop import fit
    from angioscribe.train.segmentation import SegmentationTraining, export_best

    settings = load_config(task.value, config)
    if not export_only:
        state = fit(SegmentationTraining(settings), settings, resume=resume)
        stderr.print(f"trained to epoch {state.epoch}; best val score {state.best_score:.4f}")
    report = export_best(settings, checkpoint=checkpoint, destination=export_to)
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
    from angioscribe.keyframes.training import KeyframeTraining, export_best
    from angioscribe.train.config import load_config
    from angioscribe.train.loop import fit

    settings = load_config("keyframe", config)
    if not export_only:
        state = fit(KeyframeTraining(settings), settings, resume=resume)
        stderr.print(f"trained to epoch {state.epoch}; best val score {state.best_score:.4f}")
    report = export_best(settings, checkpoint=checkpoint, destination=export_to)
    print(to_json({key: report[key] for key in ("model", "artifact", "epoch")}))

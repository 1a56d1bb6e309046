"""`angioscribe sim ...`: synthetic studies with complete ground truth (a phantom, not patients).

Exit codes follow `angioscribe.cli.contract`: 0 written, 2 usage error, 3 nothing could be
written (the error names the folder or file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.output import JsonOption, print_records, progress
from angioscribe.cli.refusal import refuse
from angioscribe.errors import AngioscribeError

app = typer.Typer(
    no_args_is_help=True,
    help="Simulate coronary angiography studies (DICOM + truth + reports) for testing and "
    "training. Synthetic phantoms: not a substitute for clinical data or validation.",
)

StudyOutOption = Annotated[
    Path, typer.Option("--out", help="Folder to write the study folder into (created).")
]
DatasetOutOption = Annotated[
    Path, typer.Option("--out", help="Folder to write the studies into (created).")
]
SeedOption = Annotated[
    int, typer.Option("--seed", min=0, help="Random seed; same seed, same output.")
]
RleOption = Annotated[bool, typer.Option("--rle", help="RLE-compress the DICOM pixel data.")]
PngOption = Annotated[bool, typer.Option("--png", help="Also write every frame as PNG.")]
Mp4Option = Annotated[bool, typer.Option("--mp4", help="Also write an H.264 preview per cine.")]
WorkersOption = Annotated[int, typer.Option(
    "--workers", min=1, help="Render this many cines at once (threads); output is identical.")]
STUDY_COLUMNS = ("study_id", "seed", "views", "frames", "lesions", "recommendation", "folder")


@app.command("study")
def study(out: StudyOutOption = Path("sim-study"), seed: SeedOption = 0, rle: RleOption = False,
          png: PngOption = False, mp4: Mp4Option = False, workers: WorkersOption = 1,
          as_json: JsonOption = False) -> None:
    """One study under OUT/<study id>: XA DICOM per cine, masks, truth.json, DeepCORO CSV and
    EN/JA reports. Exit code 0 when written, 2 on a usage error, 3 when it could not be."""
    from angioscribe.sim.study import simulate_study
    from angioscribe.sim.writers import write_study

    try:
        simulated = simulate_study(seed, workers=workers)
        write_study(simulated, out, rle=rle, png=png, mp4=mp4)
    except (OSError, AngioscribeError) as error:
        refuse(error, as_json, source=out)
    print_records([{
        "study_id": simulated.study_id,
        "seed": seed,
        "views": len(simulated.views),
        "frames": sum(view.timeline.n_frames for view in simulated.views),
        "lesions": ", ".join(f"#{lesion.segment} {lesion.stenosis_percent}%"
                             for lesion in simulated.lesions),
        "recommendation": simulated.plan.recommendation,
        "folder": str(out / simulated.study_id),
    }], as_json, STUDY_COLUMNS)


@app.command("dataset")
def dataset(out: DatasetOutOption = Path("sim-dataset"), n_studies: Annotated[int, typer.Option(
    "--n-studies", min=1, help="How many studies.")] = 10, seed: SeedOption = 0,
            rle: RleOption = False, png: PngOption = False, mp4: Mp4Option = False,
            workers: WorkersOption = 1) -> None:
    """Many studies under OUT, plus OUT/deepcoro.csv over all their cines.

    Each study is written as soon as it is simulated, and its seed is in its truth.json:
    `sim study --seed` regenerates any one of them. Exit code 0 when all were written, 2 on a
    usage error, 3 when OUT could not be written.
    """
    from angioscribe.sim.writers import dataset_seeds, write_dataset

    seeds = dataset_seeds(seed, n_studies)
    try:
        csv_path = write_dataset(out, progress(seeds, "Simulating studies", total=len(seeds)),
                                 workers=workers, rle=rle, png=png, mp4=mp4)
    except (OSError, AngioscribeError) as error:
        refuse(error, source=out)
    typer.echo(f"{n_studies} studies in {out}; labels in {csv_path}")


@app.command("videos")
def videos(out: DatasetOutOption = Path("sim-videos"), n_studies: Annotated[int, typer.Option(
    "--n-studies", min=1, help="How many studies.")] = 100, seed: SeedOption = 0,
           val: Annotated[int, typer.Option("--val", min=0, help="Validation studies.")] = 20,
           test: Annotated[int, typer.Option("--test", min=0, help="Test studies.")] = 20,
           followups: Annotated[float, typer.Option(
               "--followups", min=0.0, max=1.0,
               help="Share of patients who also get a follow-up study (visit 2).")] = 0.0,
           progression: Annotated[int, typer.Option(
               "--progression", min=1,
               help="Follow-up lesions narrow by 1..this many grades (cycled).")] = 2,
           workers: WorkersOption = 1) -> None:
    """Studies for the video model, compact: RLE cines binned to 256 px, no masks, and
    OUT/video.csv in DeepCORO-CLIP's schema with Split and visit columns (docs/video.md).
    Exit code 0 when written, 2 on a usage error, 3 when OUT could not be written."""
    from angioscribe.sim.video_dataset import (
        followup_progressions,
        split_names,
        write_video_dataset,
    )
    from angioscribe.sim.writers import dataset_seeds

    if val + test >= n_studies:
        raise typer.BadParameter("--val plus --test must leave training studies")
    seeds = dataset_seeds(seed, n_studies)
    try:
        table = write_video_dataset(out, progress(seeds, "Simulating studies", total=n_studies),
                                    split_names(n_studies, val, test), workers=workers,
                                    followups=followup_progressions(n_studies, followups,
                                                                    progression))
    except (OSError, AngioscribeError) as error:
        refuse(error, source=out)
    typer.echo(f"{n_studies} patients in {out} (follow-ups for {followups:.0%}); table {table}")


@app.command("compare")
def compare(real: Annotated[Path, typer.Argument(help="A real cine (DICOM, video or frame "
                                                     "folder) to compare against.")],
            out: Annotated[Path, typer.Option("--out", help="PNG figure to write.")],
            seed: SeedOption = 0) -> None:
    """Figure: a cine simulated at REAL's angles beside REAL, frames and intensity curves.

    Exit code 0 when the figure was written, 2 on a usage error, 3 when REAL cannot be read or
    OUT written."""
    from angioscribe.io import read_cine
    from angioscribe.sim.compare import comparison_figure, simulate_like

    try:
        cine = read_cine(real)
        figure = comparison_figure(cine, simulate_like(cine, seed), out)
    except AngioscribeError as error:
        refuse(error, source=real)
    except OSError as error:
        refuse(error, source=out)
    typer.echo(str(figure))

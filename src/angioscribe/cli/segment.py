"""`angioscribe segment IMAGE_DIR --task syntax|stenosis --out FILE.json`: COCO results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from angioscribe.cli.evaluate import ArcadeTask
from angioscribe.cli.output import progress, stderr

DEFAULT_MODELS = {"syntax": "syntax-seg", "stenosis": "stenosis-seg"}


def segment(
    image_dir: Annotated[Path, typer.Argument(help="Folder of frames (PNG/JPEG).")],
    task: Annotated[ArcadeTask, typer.Option("--task", help="What to segment.")],
    out: Annotated[Path, typer.Option("--out", help="COCO results JSON to write.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Registered name, hf-hub:ORG/REPO or .safetensors path."),
    ] = None,
    tile: Annotated[
        int | None, typer.Option("--tile", help="Tile size for frames larger than training.")
    ] = None,
    tta: Annotated[bool, typer.Option("--tta", help="Flip test-time augmentation.")] = False,
) -> None:
    """Segment every frame in IMAGE_DIR into a COCO results file (ARCADE categories,
    polygons in pixels, scores) that `angioscribe evaluate arcade` scores directly."""
    from angioscribe.errors import AngioscribeError
    from angioscribe.models.segmenter import Segmenter, image_files, segment_files
    from angioscribe.regions import coco_results

    try:
        segmenter = Segmenter.from_name(model or DEFAULT_MODELS[task.value], tile=tile, tta=tta)
        if segmenter.entry.task != task.value:
            raise AngioscribeError(f"model {segmenter.entry.name!r} segments "
                                   f"{segmenter.entry.task}, not {task.value}")
        paths = image_files(image_dir)
        images, regions = [], []
        for record, frame_regions in progress(segment_files(segmenter, paths),
                                              f"segmenting ({task.value})", total=len(paths)):
            images.append(record)
            regions.append(frame_regions)
    except AngioscribeError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(coco_results(images, regions)), encoding="utf-8")
    stderr.print(f"{sum(map(len, regions))} regions in {len(images)} images -> {out}")

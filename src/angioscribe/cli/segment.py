"""`angioscribe segment IMAGE_DIR --task syntax|stenosis --out FILE.json`: COCO results.

`segment` takes images: every file in IMAGE_DIR is one frame to segment, keyed by its file
name. A file that is not an image (a DICOM or video cine, notes) or cannot be decoded is an
error in the results file's `errors` list, and the other images are still segmented. The
results file is written in every case, so a script always finds it; the exit code says how
it went (0 all segmented, 1 some failed, 3 none).
"""

from __future__ import annotations

import json
from fnmatch import fnmatch
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from angioscribe.batch import attempt, error_record, json_safe
from angioscribe.cli.contract import ExitCode, finish
from angioscribe.cli.evaluate import ArcadeTask
from angioscribe.cli.output import progress, stderr

if TYPE_CHECKING:
    from angioscribe.models.segmenter import Segmenter

DEFAULT_MODELS = {"syntax": "syntax-seg", "stenosis": "stenosis-seg"}
NOT_AN_IMAGE = ("not an image: `segment` takes frame images (PNG, JPEG, BMP, TIFF); "
                "DICOM and video cines are not segmented")
NO_IMAGES = "no images to segment: the folder holds no files"


def segment(
    image_dir: Annotated[Path, typer.Argument(help="Folder of frames (PNG/JPEG/BMP/TIFF).")],
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
    polygons in pixels, scores) that `angioscribe evaluate arcade` scores directly.

    Inputs that fail are listed in the file's `errors` (`path`, `error`). Exit code 0 when
    every file was segmented, 1 when some failed, 3 when none was.
    """
    from angioscribe.regions import coco_results

    images, regions, errors = [], [], []
    image_paths, others = _input_files(image_dir) if image_dir.is_dir() else ([], [])
    if not image_paths and not others:
        errors.append(error_record(image_dir, NO_IMAGES if image_dir.is_dir()
                                   else "not a folder of images"))
    if image_paths:  # a folder without images is refused without loading the model
        segmenter = _load_segmenter(model or DEFAULT_MODELS[task.value], task, tile, tta)
        for position, path in progress(list(enumerate(image_paths, start=1)),
                                       f"segmenting ({task.value})"):
            segmented, error = attempt(path, partial(_segment_file, segmenter, path, position))
            if segmented is None:
                errors.append(error)
                continue
            images.append(segmented[0])
            regions.append(segmented[1])
    errors += [error_record(path, NOT_AN_IMAGE) for path in others]
    results = {**coco_results(images, regions), "errors": errors}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_safe(results), allow_nan=False), encoding="utf-8")
    stderr.print(f"{sum(map(len, regions))} regions in {len(images)} images -> {out}")
    for error in errors:
        stderr.print(f"failed: {error['path']}: {error['error']}", style="red", markup=False)
    finish(len(images), len(errors))


def _load_segmenter(name: str, task: ArcadeTask, tile: int | None, tta: bool) -> Segmenter:
    """The model, refused (a usage error) when it does not load or segments another task."""
    from angioscribe.errors import AngioscribeError
    from angioscribe.models.segmenter import Segmenter

    try:
        segmenter = Segmenter.from_name(name, tile=tile, tta=tta)
    except AngioscribeError as error:
        stderr.print(f"error: {error}")
        raise typer.Exit(ExitCode.USAGE) from None
    if segmenter.entry.task != task.value:
        stderr.print(f"error: model {segmenter.entry.name!r} segments "
                     f"{segmenter.entry.task}, not {task.value}")
        raise typer.Exit(ExitCode.USAGE)
    return segmenter


def _input_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """The folder's images to segment (in `image_files` order), and every other file, which
    will be reported as not an image. Hidden files and a cine's header sidecars (they
    describe the frames beside them) are left out; subfolders are not read."""
    from angioscribe.io.images import DICOMINFO_PATTERN, SIDECAR_NAME
    from angioscribe.models.segmenter import image_files

    images = image_files(folder)
    others = sorted(path for path in folder.iterdir()
                    if path.is_file() and path not in images and not path.name.startswith(".")
                    and path.name != SIDECAR_NAME and not fnmatch(path.name, DICOMINFO_PATTERN))
    return images, others


def _segment_file(segmenter: Segmenter, path: Path, position: int
                  ) -> tuple[dict[str, Any], list[Any]]:
    """(COCO image record, regions) of one file; its id is the numeric file stem where it is
    one (ARCADE's convention), else its position in the folder."""
    from angioscribe.models.segmenter import read_grey

    frame = read_grey(path)
    record = {"id": int(path.stem) if path.stem.isdigit() else position,
              "file_name": path.name, "width": int(frame.shape[1]), "height": int(frame.shape[0])}
    return record, segmenter.regions(frame)

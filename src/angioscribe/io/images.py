"""Frame images (png/jpg/bmp/tif) -> Cine: a folder is one cine, a single file one frame.

Public angiography data often ships cines as numbered frame files with the DICOM header beside
them, either as a MATLAB `dicominfo` text dump or as a JSON sidecar; both fill the header.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from angioscribe.cine import Cine
from angioscribe.errors import InputError
from angioscribe.io.greyscale import scale_to_uint8
from angioscribe.io.header import cine_fields, sidecar_fields

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
SIDECAR_NAME = "header.json"
DICOMINFO_PATTERN = "*dicominfo*.txt"

# Pillow modes that hold more than 8 bits per pixel; these are scaled by the cine's range.
_DEEP_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

_DICOMINFO_LINE = re.compile(r"^\s*(\w+):\s*(.*?)\s*$")
_MATLAB_ARRAY = re.compile(r"^\[\d+x\d+ \w+\]\s*=\s*\[(.*)\]$")


def natural_key(path: Path) -> list[Any]:
    """Sort key that orders embedded numbers by value: IM0_2 before IM0_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def frame_files(folder: Path) -> list[Path]:
    """The folder's image files in natural order (not recursive: subfolders are other cines)."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=natural_key)


def read_image(path: str | Path) -> Cine:
    """A single image file as a one-frame Cine."""
    path = Path(path)
    return Cine(frames=_to_uint8(_load_grey(path)[None]), source=str(path))


def read_image_folder(folder: str | Path) -> Cine:
    """The folder's frame images, in natural order, as one Cine with the header beside them."""
    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise InputError(
            folder, "no cine found: no frame images (png/jpg/bmp/tif), DICOM or video files"
        )
    frames = [_load_grey(file) for file in files]
    for file, frame in zip(files, frames, strict=True):
        if frame.shape != frames[0].shape:
            raise InputError(
                folder,
                f"frames differ in size: {files[0].name} is {_size(frames[0])}, "
                f"{file.name} is {_size(frame)}",
            )
    fields, header_files = folder_header(folder)
    extra = {"header_files": header_files} if header_files else {}
    return Cine(frames=_to_uint8(np.stack(frames)), source=str(folder), **fields, extra=extra)


def folder_header(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """Cine fields from the `dicominfo` dumps and `header.json` in a folder, and their names.

    The JSON sidecar is applied last: it is the deliberate, hand-written override.
    """
    values: dict[str, Any] = {}
    used: list[str] = []
    for dump in sorted(folder.glob(DICOMINFO_PATTERN), key=natural_key):
        values.update(parse_dicominfo(dump.read_text(errors="replace")))
        used.append(dump.name)
    fields = cine_fields(values) if used else {}
    sidecar = folder / SIDECAR_NAME
    if sidecar.is_file():
        fields.update(read_sidecar(sidecar))
        used.append(sidecar.name)
    return fields, used


def parse_dicominfo(text: str) -> dict[str, Any]:
    """DICOM keyword -> value from a MATLAB `dicominfo` display.

    Understands `Key: 'text'`, `Key: 12.5` and `Key: [2x1 double] = [0.3080, 0.3080]`; nested
    structs and arrays shown without values are skipped. The first occurrence of a key wins,
    because nested structs repeat keywords after the top-level ones.
    """
    values: dict[str, Any] = {}
    for line in text.splitlines():
        match = _DICOMINFO_LINE.match(line)
        if match is None or match.group(1) in values:
            continue
        value = _dicominfo_value(match.group(2))
        if value is not None:
            values[match.group(1)] = value
    return values


def _dicominfo_value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    array = _MATLAB_ARRAY.match(raw)
    if array is not None:
        return [float(item) for item in re.split(r"[,;\s]+", array.group(1).strip()) if item]
    if raw.startswith("["):
        return None
    try:
        return float(raw)
    except ValueError:
        return raw or None


def read_sidecar(path: Path) -> dict[str, Any]:
    """Cine fields from a JSON object named like Cine.header() (fps, primary_angle, sid_mm...)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"unreadable JSON sidecar: {error}") from error
    if not isinstance(record, dict):
        raise InputError(path, "the JSON sidecar must be an object of header fields")
    fields, invalid = sidecar_fields(record)
    if invalid:
        raise InputError(path, f"invalid value for {', '.join(invalid)} in the JSON sidecar")
    return fields


def _load_grey(path: Path) -> np.ndarray:
    """One image as a 2-D array: 8-bit grey, or the raw values of a deeper image."""
    try:
        with Image.open(path) as image:
            if image.mode in _DEEP_MODES:
                return np.asarray(image)
            return np.asarray(image.convert("L"))
    except OSError as error:  # Pillow's unidentified, truncated and damaged images
        raise InputError(path, f"unreadable image: {error}") from error


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    """8-bit frames as they are; deeper ones scaled by the cine's own min-max (as for DICOM)."""
    if frames.dtype == np.uint8:
        return frames
    return scale_to_uint8(frames, float(frames.min()), float(frames.max()))


def _size(frame: np.ndarray) -> str:
    return f"{frame.shape[1]}x{frame.shape[0]}"

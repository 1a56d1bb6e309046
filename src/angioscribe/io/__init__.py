"""Readers: any cine source (DICOM, video, frame-image folder, single image) -> Cine.

`read_cine` reads one source and raises `InputError` when it cannot; `read_cines` expands
folders and reads a whole batch, returning errors as results so one bad file never stops it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from angioscribe.cine import Cine
from angioscribe.errors import InputError
from angioscribe.io.dicom import DICOM_SUFFIXES, looks_like_dicom, read_dicom
from angioscribe.io.images import (
    IMAGE_SUFFIXES,
    is_image_file,
    natural_key,
    read_image,
    read_image_folder,
)
from angioscribe.io.video import VIDEO_SUFFIXES, read_video
from angioscribe.study import Study

__all__ = [
    "CineResult",
    "find_inputs",
    "read_cine",
    "read_cines",
    "read_studies",
    "study_key",
    "try_read_cine",
]

log = logging.getLogger(__name__)

# Files in a study folder that are DICOM but never a cine.
_NOT_CINES = frozenset({"DICOMDIR"})


@dataclass
class CineResult:
    """The outcome of reading one source: a Cine, or the InputError that stopped it."""

    source: Path
    cine: Cine | None = None
    error: InputError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_cine(path: str | Path) -> Cine:
    """Read one source: a folder is a frame-image cine; a file is read by what it contains.

    DICOM is recognised by content first (the 'DICM' marker or a dataset start), because
    archive files are often named by UID or number; then by extension. Nothing but InputError
    leaves: operating-system errors (permissions, I/O) are a property of the input too, and
    whatever else a decoding library raises on a damaged file is caught here, with the cause
    kept. MemoryError and interrupts pass: they are not the input's fault.
    """
    path = Path(path)
    try:
        return _read_by_kind(path)
    except (InputError, MemoryError):
        raise
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from error
    except Exception as error:  # the boundary: Pillow, PyAV and pydicom raise many types
        raise InputError(path, f"unreadable ({type(error).__name__}: {error})") from error


def _read_by_kind(path: Path) -> Cine:
    if path.is_dir():
        return read_image_folder(path)
    if not path.is_file():
        raise InputError(path, "no such file or folder")
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES or looks_like_dicom(path):
        return read_dicom(path)
    if suffix in VIDEO_SUFFIXES:
        return read_video(path)
    if suffix in IMAGE_SUFFIXES:
        return read_image(path)
    raise InputError(path, "not a DICOM, video or image file")


def try_read_cine(source: str | Path) -> CineResult:
    """`read_cine` with the InputError returned instead of raised, for batches."""
    source = Path(source)
    try:
        return CineResult(source, cine=read_cine(source))
    except InputError as error:
        return CineResult(source, error=error)


def find_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Cine sources under the given paths, in natural order.

    A file given by name is a source whatever it is (reading it reports what is wrong). A
    folder is searched recursively: each folder holding frame images is ONE cine, and each
    DICOM or video file in it is one more. A folder with nothing in it stays as a source, so
    reading it reports that no cine was found instead of the path silently vanishing.
    """
    sources: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            sources.extend(_folder_sources(path) or [path])
        else:
            sources.append(path)
    return sources


def _folder_sources(folder: Path) -> list[Path]:
    entries = sorted(
        (entry for entry in folder.iterdir() if not entry.name.startswith(".")), key=natural_key
    )
    files = [entry for entry in entries if entry.is_file()]
    sources = [folder] if any(is_image_file(file) for file in files) else []
    sources += [file for file in files if _is_cine_file(file)]
    for subfolder in (entry for entry in entries if entry.is_dir()):
        sources += _folder_sources(subfolder)
    return sources


def _is_cine_file(path: Path) -> bool:
    """A DICOM or video file found while searching a folder (frame images belong to the folder)."""
    if path.name in _NOT_CINES:
        return False
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES or suffix in DICOM_SUFFIXES:
        return True
    return suffix not in IMAGE_SUFFIXES and looks_like_dicom(path)


def read_cines(paths: Iterable[str | Path]) -> Iterator[CineResult]:
    """Read every cine source under `paths`, one result each, lazily (one cine in memory)."""
    for source in find_inputs(paths):
        yield try_read_cine(source)


def study_key(result: CineResult, root: Path) -> str:
    """The study a source belongs to: its StudyInstanceUID, else the folder holding it.

    An image-folder cine counts as held by its parent, unless it is the searched root itself.
    """
    holder = root if result.source == root else result.source.parent
    return (result.cine.study_uid if result.cine else None) or str(holder)


def read_studies(folder: str | Path, unread: list[CineResult] | None = None) -> list[Study]:
    """The cines under `folder` grouped into studies, in the order first met.

    Cines group by StudyInstanceUID when they carry one, otherwise by the folder that holds
    them (an image-folder cine counts as held by its parent, unless it is `folder` itself).
    Sources that cannot be read are left out (a study folder also holds non-image objects,
    SR or presentation states, that are not cines): added to `unread` when it is given, for a
    caller that reports them, otherwise logged as warnings.
    """
    root = Path(folder)
    studies: dict[str, Study] = {}
    for result in read_cines([root]):
        if result.cine is None:
            if unread is None:
                log.warning("skipped %s", result.error)
            else:
                unread.append(result)
            continue
        key = study_key(result, root)
        study = studies.setdefault(key, Study(key=key))
        study.cines.append(result.cine)
        study.patient_id = study.patient_id or result.cine.patient_id
    return list(studies.values())

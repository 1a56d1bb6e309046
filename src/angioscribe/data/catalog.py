"""The catalog: one table of every image and cine the project trains or evaluates on.

One row per ARCADE image or per cine, written as Parquet (or CSV) so training, evaluation and
benchmarks select data by column instead of walking folders. Its job beyond listing is splitting
without leakage: `assign_splits` puts whole groups (patients, or videos) into one split and
`check_no_leakage` refuses a table where a group straddles two.

Who is a "patient":
- ARCADE has no patient ids. Each image starts as its own patient, but images that look alike
  (the same picture stored twice, frames of one cine; see `lookalike`) are merged into one
  patient, because ARCADE repeats pictures across its tasks and official splits.
- Cines use their DICOM PatientID, else their StudyInstanceUID (a study has one patient), else
  the folder holding them (a study folder holds one patient's cines): when unsure, group more,
  since a coarser group only costs split balance while a finer one leaks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from angioscribe.cine import Cine
from angioscribe.data.arcade import ArcadeImage, ArcadeSplit
from angioscribe.data.lookalike import LOOKALIKE_THRESHOLD, image_signature, lookalike_groups
from angioscribe.errors import InputError

# Column -> pandas dtype. Nullable dtypes so a cine's missing frame index or an unlabelled
# laterality stays missing (<NA>) through Parquet and CSV alike.
CATALOG_COLUMNS: dict[str, str] = {
    "dataset": "string",  # where the row comes from: "arcade", or the name given to a cine set
    "path": "string",  # image file, or the cine's source (DICOM file, video, frame folder)
    "patient_id": "string",
    "study_id": "string",
    "video_id": "string",  # one acquisition (cine); ARCADE: its look-alike group
    "frame": "Int64",  # frame index within the video; <NA> for a row standing for a whole cine
    "n_frames": "Int64",
    "task": "string",  # ARCADE task (syntax|stenosis); <NA> for cines
    "split": "string",  # train|val|test, or <NA> until assigned
    "laterality": "string",  # LCA|RCA from annotated segments; <NA> when not known
    "segments": "string",  # annotated SYNTAX numbers, space-separated in ARCADE id order
    "n_annotations": "Int64",
    "image_id": "Int64",  # COCO image id within its ARCADE task/split
    "width": "Int64",
    "height": "Int64",
    "fps": "Float64",
    "primary_angle": "Float64",
    "secondary_angle": "Float64",
}
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}


class SplitLeakError(InputError):
    """Rows of one patient (or video) sit in more than one split; `leaking` says which."""

    def __init__(self, by: str, leaking: dict[str, list[str]]) -> None:
        self.by = by
        self.leaking = leaking
        shown = "; ".join(
            f"{key} ({', '.join(splits)})" for key, splits in list(leaking.items())[:10]
        )
        more = f"; and {len(leaking) - 10} more" if len(leaking) > 10 else ""
        super().__init__(
            "catalog", f"{len(leaking)} {by} values are in more than one split: {shown}{more}"
        )


def catalog_from_arcade(
    splits: Iterable[ArcadeSplit], lookalike_threshold: float | None = LOOKALIKE_THRESHOLD
) -> pd.DataFrame:
    """Rows for every image of the given ARCADE splits, with official splits in `split`.

    `patient_id` and `video_id` are the image's look-alike group (named after its first member,
    e.g. "arcade:syntax/train/100"); `lookalike_threshold=None` makes each image its own group,
    which is faster but leaks (ARCADE repeats pictures across tasks and splits).
    """
    rows, names, paths = [], [], []
    for split in splits:
        for image in split.images:
            rows.append(_arcade_row(split, image))
            names.append(f"arcade:{split.task}/{split.split}/{image.path.stem}")
            paths.append(image.path)
    if lookalike_threshold is None:
        group_names = names
    else:
        groups = lookalike_groups((image_signature(p) for p in paths), lookalike_threshold)
        group_names = [names[g] for g in groups]
    catalog = _typed(pd.DataFrame(rows, columns=list(CATALOG_COLUMNS)))
    catalog["patient_id"] = pd.array(group_names, dtype="string")
    catalog["video_id"] = catalog["patient_id"]
    return catalog


def _arcade_row(split: ArcadeSplit, image: ArcadeImage) -> dict[str, Any]:
    segments = sorted({(a.category_id, a.segment) for a in image.annotations if not a.is_stenosis})
    return {
        "dataset": "arcade",
        "path": str(image.path.resolve()),
        "frame": 0,
        "n_frames": 1,
        "task": split.task,
        "split": split.split,
        "laterality": image.laterality,
        "segments": " ".join(number for _, number in segments) or None,
        "n_annotations": len(image.annotations),
        "image_id": image.image_id,
        "width": image.width,
        "height": image.height,
    }


def catalog_from_cines(
    cines: Iterable[Cine | Mapping[str, Any]], dataset: str = "cines"
) -> pd.DataFrame:
    """One row per cine, from `Cine` objects or their `header()` dicts (pixels are not needed).

    Split and laterality stay empty: a cine's side is a model's or a reader's call, not a
    header value.
    """
    rows = []
    for cine in cines:
        header = cine.header() if isinstance(cine, Cine) else dict(cine)
        source = str(header["source"])
        rows.append(
            {
                "dataset": dataset,
                "path": source,
                "patient_id": (
                    header.get("patient_id")
                    or header.get("study_uid")
                    or f"folder:{Path(source).parent}"
                ),
                "study_id": header.get("study_uid"),
                "video_id": header.get("sop_uid") or source,
                "n_frames": header.get("frames"),
                "width": header.get("cols"),
                "height": header.get("rows"),
                "fps": header.get("fps"),
                "primary_angle": header.get("primary_angle"),
                "secondary_angle": header.get("secondary_angle"),
            }
        )
    return _typed(pd.DataFrame(rows, columns=list(CATALOG_COLUMNS)))


def assign_splits(
    catalog: pd.DataFrame,
    by: str = "patient_id",
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """A copy with `split` reassigned so that every `by` group lies in exactly one split.

    Groups are shuffled with `seed`, then each goes to the split furthest below its target share
    of rows, so split sizes follow `fractions` (by rows) as closely as whole groups allow.
    """
    if by not in catalog.columns:
        raise InputError("catalog", f"no column {by!r} to split by")
    if catalog[by].isna().any():
        raise InputError(
            "catalog",
            f"{int(catalog[by].isna().sum())} rows have no {by}; every "
            f"row needs one to be split without leakage",
        )
    total = sum(fractions.values())
    if not fractions or min(fractions.values()) < 0 or not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must be non-negative and sum to 1: {dict(fractions)}")
    sizes = catalog.groupby(by, sort=True).size()
    order = np.random.default_rng(seed).permutation(len(sizes))
    filled = dict.fromkeys(fractions, 0)
    split_of: dict[Any, str] = {}
    for position in order:
        name = max(fractions, key=lambda split: fractions[split] * len(catalog) - filled[split])
        split_of[sizes.index[position]] = name
        filled[name] += int(sizes.iloc[position])
    result = catalog.copy()
    result["split"] = pd.array(catalog[by].map(split_of), dtype="string")
    return result


def check_no_leakage(catalog: pd.DataFrame, by: str = "patient_id") -> None:
    """Raise `SplitLeakError` naming every `by` value found in more than one split.

    Rows without a split are not in any split and cannot leak.
    """
    assigned = catalog[catalog["split"].notna()]
    splits = assigned.groupby(by)["split"].unique()
    leaking = {str(key): sorted(values) for key, values in splits.items() if len(values) > 1}
    if leaking:
        raise SplitLeakError(by, leaking)


def write_catalog(catalog: pd.DataFrame, path: str | Path) -> Path:
    """Write as Parquet (.parquet) or CSV (.csv), chosen by the file's suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(path, "catalog file must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        catalog.to_parquet(path, index=False)
    else:
        catalog.to_csv(path, index=False)
    return path


def read_catalog(path: str | Path) -> pd.DataFrame:
    """Read a catalog written by `write_catalog`, with the catalog's column types."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such catalog file")
    if path.suffix.lower() == ".parquet":
        return _typed(pd.read_parquet(path))
    if path.suffix.lower() == ".csv":
        return _typed(pd.read_csv(path, dtype={c: t for c, t in CATALOG_COLUMNS.items()}))
    raise InputError(path, "catalog file must end in .parquet or .csv")


def _typed(catalog: pd.DataFrame) -> pd.DataFrame:
    known = {c: t for c, t in CATALOG_COLUMNS.items() if c in catalog.columns}
    return catalog.astype(known)

"""Video tables: one CSV row per cine, grouped into studies with their texts and labels.

Two schemas load without conversion (docs/video.md): DeepCORO-CLIP's (`FileName`, `Report`,
`Split`, `StudyInstanceUID`, optionally `α`-separated) and the simulator's `deepcoro.csv`
(`DICOMPath`, `ss_event_cath_id`, `ss_patient_id`, `main_structure`). Both carry DeepCORO's
label columns (`prox_lad_stenosis`, `prox_lad_stenosis_binary`, `prox_lad_cto`,
`prox_lad_thrombus`, `prox_lad_calcif_binary`, ...); an empty cell is unknown, never healthy.
Without a `Report` column a video's text is written from its side's labels, so the simulator's
tables train the contrastive part too.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from angioscribe.anatomy import DEEPCORO_LATERALITY, DEEPCORO_SEGMENTS
from angioscribe.errors import InputError
from angioscribe.io import read_cine
from angioscribe.progress import progress
from angioscribe.sim.writers import DEEPCORO_COLUMN_STEMS
from angioscribe.video.features import FeatureCache, FrameFeatureEncoder, warm_feature_cache
from angioscribe.video.study_model import FINDINGS

PATH_COLUMNS = ("FileName", "DICOMPath")
STUDY_COLUMNS = ("StudyInstanceUID", "ss_event_cath_id")
PATIENT_COLUMNS = ("ss_patient_id", "PatientID")
LABEL_SUFFIXES = dict(zip(FINDINGS, ("stenosis", "stenosis_binary", "cto", "thrombus",
                                     "calcif_binary"), strict=True))
# Calcification counts as present when moderate or severe: the grades an angiographer reports.
CALCIFICATION_PRESENT = {"moderate": 1.0, "severe": 1.0, "mild": 0.0, "none": 0.0}
TEXT_SEPARATOR = "\x1e"


@dataclass(frozen=True)
class VideoRecord:
    path: Path
    side: str  # "LCA", "RCA" or "" when the table does not say
    text: str


@dataclass
class StudyRecord:
    """One study: its cines, patient, split and (18, 5) labels, NaN where unknown."""

    study: str
    patient: str
    split: str
    videos: list[VideoRecord] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.full(
        (len(DEEPCORO_SEGMENTS), len(FINDINGS)), np.nan))


def read_table(path: str | Path, val_fraction: float = 0.2) -> list[StudyRecord]:
    """The studies of a video CSV, in the order first met; paths resolve from its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(path, f"cannot read the video table: {error}") from error
    delimiter = "α" if text.splitlines()[0].count("α") > text.splitlines()[0].count(",") else ","
    rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise InputError(path, "the video table has no rows")
    columns = rows[0].keys()
    path_column = _first_present(path, columns, PATH_COLUMNS)
    study_column = _first_present(path, columns, STUDY_COLUMNS)
    patient_column = next((c for c in PATIENT_COLUMNS if c in columns), study_column)
    studies: dict[str, StudyRecord] = {}
    for row in rows:
        key = row[study_column]
        record = studies.get(key)
        if record is None:
            patient = row[patient_column] or key
            split = (row.get("Split") or _split_of(patient, val_fraction)).lower()
            record = studies[key] = StudyRecord(key, patient, split)
            _fill_labels(record.labels, row)
        side = side_of(row.get("main_structure", ""))
        text = row.get("Report") or label_text(record.labels, side)
        record.videos.append(VideoRecord(path.parent / row[path_column], side, text))
    return list(studies.values())


def read_tables(tables: str | Path | list[str | Path], val_fraction: float = 0.2
                ) -> list[StudyRecord]:
    """The studies of one video CSV or of several joined (a group's archives, or a dataset
    and extra training studies written apart), each table keeping its own splits. A study
    key met in two tables is refused: its cines would be split between two records."""
    paths = [tables] if isinstance(tables, (str, Path)) else list(tables)
    studies: list[StudyRecord] = []
    seen: dict[str, Path] = {}
    for path in map(Path, paths):
        for study in read_table(path, val_fraction):
            if study.study in seen:
                raise InputError(path, f"study {study.study} is also in {seen[study.study]}")
            seen[study.study] = path
            studies.append(study)
    return studies


def _first_present(source: Path, columns: Iterable[str], names: tuple[str, ...]) -> str:
    for name in names:
        if name in columns:
            return name
    raise InputError(source, f"the video table needs one of the columns {', '.join(names)}")


def _split_of(patient: str, val_fraction: float) -> str:
    """A patient's split when the table has none: a stable hash, never cutting a patient."""
    share = int(hashlib.sha256(patient.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if share < val_fraction else "train"


def side_of(value: str) -> str:
    value = value.strip().lower()
    if value in ("0", "lca") or "left" in value:
        return "LCA"
    if value in ("1", "rca") or "right" in value:
        return "RCA"
    return ""


def _fill_labels(labels: np.ndarray, row: dict[str, str]) -> None:
    for i, segment in enumerate(DEEPCORO_SEGMENTS):
        stem = DEEPCORO_COLUMN_STEMS[segment]
        for j, finding in enumerate(FINDINGS):
            labels[i, j] = _number(row.get(f"{stem}_{LABEL_SUFFIXES[finding]}", ""))


def _number(cell: str) -> float:
    cell = (cell or "").strip()
    lowered = cell.lower()
    if not cell or lowered == "nan":
        return np.nan
    if lowered in CALCIFICATION_PRESENT:
        return CALCIFICATION_PRESENT[lowered]
    if lowered in ("true", "false"):
        return float(lowered == "true")
    return float(cell)


def label_text(labels: np.ndarray, side: str) -> str:
    """A short report of one side's segments from its labels (tables without `Report`)."""
    findings = []
    for i, segment in enumerate(DEEPCORO_SEGMENTS):
        if side and DEEPCORO_LATERALITY[segment] != side:
            continue
        percent, _, cto, thrombus, calcified = labels[i]
        words = []
        if cto == 1:
            words.append("chronic total occlusion")
        elif percent >= 25:
            words.append(f"{percent:.0f}% stenosis")
        if thrombus == 1:
            words.append("thrombus")
        if calcified == 1:
            words.append("calcified")
        if words:
            findings.append(f"{segment} {', '.join(words)}")
    return f"{side or 'Coronary'}: " + ("; ".join(findings) if findings else "no stenosis") + "."


class StudySet(Dataset):
    """Studies as fixed-size samples the default collate stacks: `inputs` (V, ...) padded to
    `max_videos`, `valid` (V,), `texts` (one string, `TEXT_SEPARATOR` between videos),
    `labels` and `known` (18, 5), `index`. Video inputs come from `prepare` (the encoder's)."""

    def __init__(self, studies: list[StudyRecord], prepare: Callable[..., torch.Tensor],
                 cache: FeatureCache | None, max_videos: int) -> None:
        self.studies = studies
        self.prepare = prepare
        self.cache = cache
        self.max_videos = max_videos

    def set_epoch(self, epoch: int) -> None:
        """Frame choice is deterministic: every epoch sees the same clips."""

    def __len__(self) -> int:
        return len(self.studies)

    def video_input(self, video: VideoRecord) -> torch.Tensor:
        return self.prepare(video.path, lambda: read_cine(video.path), self.cache)

    def warm(self, encoder: FrameFeatureEncoder | None = None, workers: int = 1) -> None:
        """Compute every cine's cached input once, with progress (the first epoch's cost);
        with a cache, the frame `encoder` and `workers` > 1, in that many processes."""
        videos = [v for study in self.studies for v in study.videos[: self.max_videos]]
        if self.cache is not None and encoder is not None and workers > 1:
            warm_feature_cache(self.cache, [video.path for video in videos], encoder, workers)
            return
        for video in progress(videos, "Caching frame features", total=len(videos)):
            self.video_input(video)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str | int]:
        study = self.studies[index]
        videos = study.videos[: self.max_videos]
        inputs = [self.video_input(video) for video in videos]
        padded = inputs[0].new_zeros((self.max_videos, *inputs[0].shape))
        padded[: len(inputs)] = torch.stack(inputs)
        valid = torch.zeros(self.max_videos, dtype=torch.bool)
        valid[: len(inputs)] = True
        labels = torch.from_numpy(study.labels).float()
        return {"inputs": padded, "valid": valid, "index": index,
                "texts": TEXT_SEPARATOR.join(video.text for video in videos),
                "labels": torch.nan_to_num(labels), "known": ~torch.isnan(labels)}

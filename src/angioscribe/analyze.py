"""`analyze`: the whole chain that exists so far, over every study in a folder.

Today: read every cine, pick candidate frames, and write results as JSON plus figures. Each
later stage (key frames, findings, reports) adds its part to `CineAnalysis`/`StudyAnalysis`
here, so `angioscribe analyze` and `make demo` always run the full chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from angioscribe.anatomy import view_from_angles
from angioscribe.cine import Cine
from angioscribe.frames import DEFAULT_MIN_GAP, Candidate, candidate_frames
from angioscribe.io import find_inputs, study_key, try_read_cine


@dataclass
class CineAnalysis:
    """What the chain found in one cine; `figure` is the PNG written for it, if any."""

    source: str
    header: dict[str, Any]
    view: str | None
    candidates: list[Candidate]
    figure: str | None = None


@dataclass
class StudyAnalysis:
    """One study: its cines' analyses and the inputs that could not be read."""

    key: str
    cines: list[CineAnalysis] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyze_cine(cine: Cine, min_gap: int = DEFAULT_MIN_GAP) -> CineAnalysis:
    """Every stage that works on a single cine."""
    return CineAnalysis(
        source=cine.source,
        header=cine.header(),
        view=view_from_angles(cine.primary_angle, cine.secondary_angle),
        candidates=candidate_frames(cine.frames, min_gap=min_gap),
    )


def analyze_paths(
    paths: Iterable[str | Path], out_dir: Path, min_gap: int = DEFAULT_MIN_GAP
) -> list[StudyAnalysis]:
    """Analyse every cine under `paths`, grouped into studies; figures go under `out_dir`.

    Unreadable inputs are recorded in their study's `errors` and the rest goes on. The JSON is
    written once at the end by `write_analysis`; figures are written as each cine finishes so
    a crash late in a batch keeps the earlier ones.
    """
    from angioscribe.cli.output import progress
    from angioscribe.figures import plot_candidates

    studies: dict[str, StudyAnalysis] = {}
    for root in map(Path, paths):
        sources = find_inputs([root])
        for source in progress(sources, f"Analysing {root}", total=len(sources)):
            result = try_read_cine(source)
            key = study_key(result, root)
            study = studies.setdefault(key, StudyAnalysis(key))
            if result.cine is None:
                problem = result.error.problem if result.error else "not read"
                study.errors.append({"path": str(source), "error": problem})
                continue
            analysis = analyze_cine(result.cine, min_gap=min_gap)
            figure = out_dir / "figures" / f"{_slug(source)}_candidates.png"
            analysis.figure = str(plot_candidates(result.cine, analysis.candidates, figure))
            study.cines.append(analysis)
    return list(studies.values())


def write_analysis(studies: list[StudyAnalysis], out_dir: Path) -> Path:
    """All studies' results as one JSON file in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "analysis.json"
    path.write_text(
        json.dumps([study.to_dict() for study in studies], indent=2, default=str) + "\n"
    )
    return path


def _slug(path: Path) -> str:
    """A file-name-safe name for a source, unique enough within one run."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(path.parts[-2:]))

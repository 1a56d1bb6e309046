"""Where the review page finds its studies: a results folder or the service's data.

Two layouts hold analysed studies. `angioscribe analyze --out DIR` writes one `DIR/analysis.json`
with every study; the service writes `DATA/results/<StudyInstanceUID>/analysis.json` per study
and keeps each study's state in its job queue. `open_target` takes what `angioscribe review`
is given (a results folder, a service data folder, or the queue's database URL) and answers
with the studies and the review store's URL: `review.sqlite` in a results folder, the
service's own database otherwise.

A study's images are served only from the figure paths its analysis.json names, resolved inside
its folder: a URL can name no other file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from angioscribe.errors import InputError

ANALYSIS_FILE = "analysis.json"
STORE_FILE = "review.sqlite"
_PLAIN_ID = re.compile(r"[0-9A-Za-z._-]{1,64}")


@dataclass(frozen=True)
class StudyEntry:
    """One study as the list shows it: its URL id, key, the service's state (None for a results
    folder) and the folder its analysis.json is in."""

    id: str
    key: str
    service_state: str | None
    analysis_dir: Path

    @property
    def analysed(self) -> bool:
        """Whether its analysis is there to review (the service's may still be running)."""
        return (self.analysis_dir / ANALYSIS_FILE).is_file()


def study_id(key: str) -> str:
    """A URL-safe id: the key itself when it is a UID or a plain name, else a hash of it."""
    if _PLAIN_ID.fullmatch(key) and key not in (".", ".."):
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


class ResultsFolder:
    """The studies of one `analysis.json` (from `angioscribe analyze --out DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def studies(self) -> list[StudyEntry]:
        return [StudyEntry(study_id(str(s["key"])), str(s["key"]), None, self.root)
                for s in read_analysis(self.root / ANALYSIS_FILE)]

    def analysis(self, entry: StudyEntry) -> dict[str, Any]:
        for study in read_analysis(self.root / ANALYSIS_FILE):
            if str(study["key"]) == entry.key:
                return study
        raise InputError(self.root / ANALYSIS_FILE, f"no study {entry.key}")


class ServiceResults:
    """The service's studies: each job of its queue, analysed into `results_dir/<uid>/`."""

    def __init__(self, queue_url: str, results_dir: Path) -> None:
        from angioscribe.service.queue import JobQueue

        self.queue = JobQueue(queue_url)
        self.results_dir = results_dir

    def studies(self) -> list[StudyEntry]:
        return [StudyEntry(study_id(job.study_uid), job.study_uid, str(job.state),
                           self.results_dir / job.study_uid) for job in self.queue.jobs()]

    def analysis(self, entry: StudyEntry) -> dict[str, Any]:
        studies = read_analysis(entry.analysis_dir / ANALYSIS_FILE)
        if not studies:
            raise InputError(entry.analysis_dir / ANALYSIS_FILE, "holds no study")
        return studies[0]


StudySource = ResultsFolder | ServiceResults


def find_study(source: StudySource, sid: str) -> StudyEntry | None:
    return next((entry for entry in source.studies() if entry.id == sid), None)


def read_analysis(path: Path) -> list[dict[str, Any]]:
    """The studies of an analysis.json; a missing file (not analysed yet) is none."""
    if not path.is_file():
        return []
    try:
        studies = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read the analysis: {error}") from None
    if not isinstance(studies, list):
        raise InputError(path, "is not a list of studies (angioscribe analyze writes one)")
    return studies


def figures(study: Mapping[str, Any]) -> dict[str, list[str]]:
    """The study's figures by kind: the key-frame figure, each frame's overlay (key frames
    first), each cine's candidate strip; paths relative to the analysis folder."""
    frames = sorted(study.get("findings") or [], key=lambda f: not f.get("key_frame"))
    return {
        "key_frames": [study["figure"]] if study.get("figure") else [],
        "overlays": [f["figure"] for f in frames if f.get("figure")],
        "candidates": [c["figure"] for c in study.get("cines") or [] if c.get("figure")],
    }


def image_path(entry: StudyEntry, study: Mapping[str, Any], name: str) -> Path | None:
    """The file of figure `name` when the study's analysis names it and it lies inside the
    study's folder; None for anything else (another file, `..`, a link out)."""
    named = {path for paths in figures(study).values() for path in paths}
    if name not in named:
        return None
    root = entry.analysis_dir.resolve()
    path = (root / name).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


@dataclass(frozen=True)
class Target:
    """What `angioscribe review` works on: the studies, the store's URL and, for the service,
    its configuration (destinations for signed reports)."""

    source: StudySource
    store_url: str
    service: Any = None  # ServiceConfig when the studies are the service's


def open_target(target: str) -> Target:
    """A results folder, the service's data folder, its queue URL or its config file (YAML,
    which also names the destinations of signed reports).

    Raises InputError naming `target` when it is none of these.
    """
    if "://" in target:
        return _queue_target(target)
    folder = Path(target)
    if folder.suffix in (".yaml", ".yml") and folder.is_file():
        from angioscribe.service.config import load_config

        return _service_target(load_config(folder))
    if (folder / ANALYSIS_FILE).is_file():
        return Target(ResultsFolder(folder), f"sqlite:///{(folder / STORE_FILE).resolve()}")
    if (folder / "queue.db").is_file() or (folder / "results").is_dir():
        from angioscribe.service.config import ServiceConfig

        return _service_target(ServiceConfig(data_dir=folder))
    raise InputError(target, f"is neither a results folder (with {ANALYSIS_FILE}), a service "
                             "data folder (with queue.db), a queue URL nor a service config")


def _service_target(service: Any) -> Target:
    return Target(ServiceResults(service.queue_url, service.results_dir), service.queue_url,
                  service)


def _queue_target(url: str) -> Target:
    """A queue URL: a SQLite queue's results are beside its file; other databases need the
    data folder from the service's config file."""
    from sqlalchemy.engine import make_url

    from angioscribe.service.config import ServiceConfig

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise InputError(url, "a database other than a SQLite file does not say where the "
                              "results are: give the service's config file instead")
    data_dir = Path(parsed.database).parent
    return _service_target(ServiceConfig(data_dir=data_dir, queue_url=url))

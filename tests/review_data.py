"""Data for the review page tests: the outputs tests' analysed simulated study laid out as a
results folder and as the service's data folder, and readers to log in.

The study is analysed once per test session (`outputs_study.analysed_study`); each test gets
its own copy of the folder, so its review store starts empty.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from angioscribe.review.auth import add_user
from angioscribe.review.store import ReviewStore
from outputs_study import analysed_study

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "carol": "carol-admin-333"}
ROLES = {"alice": "reader", "bob": "reader", "carol": "admin"}


def results_folder(root: Path) -> Path:
    """A copy of the analysed study's results folder (analysis.json and figures)."""
    _, analysis_dir = analysed_study()
    folder = root / "results"
    shutil.copytree(analysis_dir, folder)
    return folder


def service_data(root: Path) -> tuple[Path, dict[str, Any]]:
    """The service's data folder with the study analysed into results/<uid>/ (analysis.json,
    figures and the objects it sent: the preliminary SR among them) and its job DRAFTED."""
    from angioscribe.outputs import write_study_objects
    from angioscribe.service.queue import JobQueue

    study, analysis_dir = analysed_study()
    objects = write_study_objects(study, analysis_dir, root / "objects")
    uid = str(objects_study_uid(objects.sr))
    data = root / "data"
    results = data / "results" / uid
    shutil.copytree(analysis_dir, results)
    shutil.copytree(root / "objects", results / "objects")
    (results / "analysis.json").write_text(json.dumps([study]), encoding="utf-8")
    queue = JobQueue(f"sqlite:///{data / 'queue.db'}")
    queue.record_instance(uid, results / "analysis.json")
    queue.complete(uid)
    queue.claim("test-worker")
    queue.drafted(uid, objects.dicom())
    queue.close()
    return data, study


def objects_study_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def add_readers(store: ReviewStore) -> None:
    for name, password in PASSWORDS.items():
        add_user(store, name, password, ROLES[name], by="test")

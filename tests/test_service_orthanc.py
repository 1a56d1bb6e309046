"""End to end against a real PACS: a 7-view simulated study C-STOREd into Orthanc is routed by
Orthanc's Lua script (deploy/orthanc) to `angioscribe serve`, which sends its Comprehensive SR,
Key Object Selection and Encapsulated PDF back into the same study in Orthanc, once (the route
does not send the study again when the results make it stable a second time); the SR's lesions
are the `study_findings` that `angioscribe analyze` writes for the same files.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    ComprehensiveSRStorage,
    EncapsulatedPDFStorage,
    KeyObjectSelectionDocumentStorage,
    XRayAngiographicImageStorage,
)

from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import write_study
from dicom_network import store_files
from orthanc import StoredInstance, free_port, orthanc_available, running_orthanc
from serve_process import ANGIOSCRIBE, queue_jobs, start_serve

SEED = 0  # a study with lesions in both coronary trees
VIEWS = (5, 2)  # left, right
RESULT_CLASSES = {ComprehensiveSRStorage, KeyObjectSelectionDocumentStorage,
                  EncapsulatedPDFStorage}
SERVICE_AET = "ANGIOSCRIBE"
RESULTS_TIMEOUT_S = 240.0  # model loading, 7 cines, EN + JA drafts on a shared 2-core machine
SETTLE_S = 4.0  # > Orthanc's stable age + the service's stable wait: time for a loop to show
ROUTED_LINE = "angioscribe route: sent"  # deploy/orthanc/route-to-angioscribe.lua's log line

# Models loading in the worker, 7 cines analysed twice (by the service and by `analyze`): about
# two minutes on a shared 2-core machine.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not orthanc_available(),
                                 reason="Orthanc is not installed (Debian package orthanc)")]

FINDING = "121071"
LUMEN_DIAMETER_STENOSIS = "408715008"
TRACKING_IDENTIFIER = "112039"


def sr_lesions(sr: Dataset) -> dict[str, float | None]:
    """Each Finding group's SYNTAX segment (from its tracking identifier) and % diameter
    stenosis (None where the group has no stenosis NUM, e.g. an occlusion). An occlusion is
    also a CODE item named Finding, inside its group: only containers are groups."""
    lesions: dict[str, float | None] = {}
    for finding in _items(sr, FINDING):
        if finding.ValueType != "CONTAINER":
            continue
        label = next(item.TextValue for item in finding.ContentSequence
                     if _concept(item) == TRACKING_IDENTIFIER)
        segment = re.search(r"#(\w+)", label)
        assert segment, f"no SYNTAX segment in the tracking identifier {label!r}"
        stenosis = [float(item.MeasuredValueSequence[0].NumericValue)
                    for item in finding.ContentSequence
                    if _concept(item) == LUMEN_DIAMETER_STENOSIS]
        lesions[segment.group(1)] = stenosis[0] if stenosis else None
    return lesions


def _concept(item: Dataset) -> str:
    names = item.get("ConceptNameCodeSequence")
    return str(names[0].CodeValue) if names else ""


def _items(node: Dataset, concept: str) -> list[Dataset]:
    """Content items named `concept`, anywhere in the tree."""
    found = []
    for item in node.get("ContentSequence", []):
        if _concept(item) == concept:
            found.append(item)
        found.extend(_items(item, concept))
    return found


def has_results(instances: list[StoredInstance]) -> bool:
    return RESULT_CLASSES <= {instance.sop_class_uid for instance in instances}


def test_study_stored_into_orthanc_comes_back_with_sr_kos_and_pdf(tmp_path: Path) -> None:
    study = simulate_study(SEED, *VIEWS)
    write_study(study, tmp_path / "sim", rle=True)
    dicom = tmp_path / "sim" / study.study_id / "dicom"
    files = sorted(dicom.glob("*.dcm"))
    service_port = free_port()
    with running_orthanc(tmp_path / "orthanc", SERVICE_AET, service_port) as orthanc:
        destination = f"{orthanc.ae_title}@127.0.0.1:{orthanc.dicom_port}"
        serve = start_serve(tmp_path / "data", [destination], port=service_port,
                            ae_title=SERVICE_AET, stable_seconds=1.0, workers=1)
        try:
            analyze = subprocess.Popen(
                [str(ANGIOSCRIBE), "analyze", str(dicom), "--out", str(tmp_path / "analyze")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            stored = store_files(files, orthanc.dicom_port, orthanc.ae_title)
            assert [result.status for result in stored] == [0x0000] * len(files)
            instances = orthanc.wait_for_instances(study.study_instance_uid, has_results,
                                                   RESULTS_TIMEOUT_S)
            time.sleep(SETTLE_S)  # the results make the study stable again: nothing may loop
        finally:
            assert serve.stop() == 0, serve.log()[-3000:]
        assert has_results(instances), (serve.log()[-3000:], orthanc.log()[-2000:])
        assert orthanc.log().count(ROUTED_LINE) == 1, orthanc.log()[-2000:]
        results = [item for item in instances if item.sop_class_uid in RESULT_CLASSES]
        assert len(results) == len(RESULT_CLASSES)
        assert {item.remote_aet for item in results} == {SERVICE_AET}
        cines = [item for item in instances if item.sop_class_uid == XRayAngiographicImageStorage]
        assert len(cines) == len(files)
        sr_id = next(item.orthanc_id for item in results
                     if item.sop_class_uid == ComprehensiveSRStorage)
        sr = pydicom.dcmread(BytesIO(orthanc.get_bytes(f"/instances/{sr_id}/file")))
    [job] = queue_jobs(tmp_path / "data")
    assert (job["study_uid"], job["state"], job["attempts"]) == (
        study.study_instance_uid, "sent", 1)
    _, errors = analyze.communicate(timeout=RESULTS_TIMEOUT_S)
    assert analyze.returncode == 0, errors[-3000:]
    analysis = json.loads((tmp_path / "analyze" / "analysis.json").read_text())
    expected = {entry["segment"]: entry["stenosis_percent"]
                for entry in analysis[0]["study_findings"]}
    assert expected, "the simulated study should show lesions"
    assert sr.StudyInstanceUID == study.study_instance_uid
    assert sr_lesions(sr) == pytest.approx(expected, abs=0.05)

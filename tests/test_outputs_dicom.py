"""The DICOM objects of an analysed study: valid (dciodvfy), in the study, and the same findings
read back; the SR's codes for what was and was not assessed; deterministic UIDs."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
import pytest
from pydicom.multival import MultiValue

from angioscribe.errors import InputError
from angioscribe.outputs import StudyObjects, write_study_objects
from angioscribe.outputs.codes import segment_site
from angioscribe.outputs.sources import read_sources
from angioscribe.outputs.sr import write_sr
from outputs_study import analysed_study

STENOSIS, SITE, FINDING = "408715008", "363698007", "121071"


@pytest.fixture(scope="module")
def study() -> dict[str, Any]:
    return analysed_study()[0]


@pytest.fixture(scope="module")
def written(study, tmp_path_factory) -> StudyObjects:
    return write_study_objects(study, analysed_study()[1], tmp_path_factory.mktemp("objects"))


def children(item: pydicom.Dataset, concept: str | None = None) -> list[pydicom.Dataset]:
    """An SR item's children, those named `concept` (a code value) when given."""
    return [child for child in item.get("ContentSequence", [])
            if concept is None or child.ConceptNameCodeSequence[0].CodeValue == concept]


def lesions(sr: pydicom.Dataset) -> list[pydicom.Dataset]:
    """The SR's Finding groups (under Findings, 121070)."""
    return children(children(sr, "121070")[0], FINDING)


def test_the_study_has_findings_to_write(study):
    assert study["study_findings"], "the test study must have lesions"
    assert all(study["keyframes"]["keyframes"].values())


@pytest.mark.parametrize("kind", ["sr", "kos", "pdf"])
def test_every_dicom_object_passes_dciodvfy(written, kind):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian dicom3tools) not installed")
    result = subprocess.run(["dciodvfy", str(getattr(written, kind))], capture_output=True,
                            text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if line.startswith(("Error", "E:"))]
    assert not errors, "\n".join(lines)


def test_the_objects_join_the_source_study_in_new_series(study, written):
    source = read_sources(study)
    series = set()
    for path in written.dicom():
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == source.study_uid
        assert ds.PatientID == source.first.PatientID
        series.add(ds.SeriesInstanceUID)
    assert len(series) == 3
    assert not series & {str(header.SeriesInstanceUID) for header in source.headers.values()}


def test_the_sr_reads_back_to_the_study_findings(study, written):
    sr = pydicom.dcmread(written.sr)
    hd.sr.ComprehensiveSR.from_dataset(sr)  # highdicom reads it as its IOD
    read = []
    for lesion in lesions(sr):
        site = children(lesion, SITE)[0].ConceptCodeSequence[0].CodeValue
        percent = float(children(lesion, STENOSIS)[0].MeasuredValueSequence[0].NumericValue)
        read.append((site, percent))
    expected = [(segment_site(f["segment"]).code.value, round(f["stenosis_percent"], 2))
                for f in study["study_findings"]]
    assert read == expected


def test_the_sr_keeps_the_japanese_draft(study, written):
    sr = pydicom.dcmread(written.sr)
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    texts = {children(item, "121049")[0].ConceptCodeSequence[0].CodeValue: item.TextValue
             for item in children(children(sr, "121072")[0], "121073")}
    assert texts == {lang: draft["text"] for lang, draft in study["drafts"].items()}
    assert any(ord(char) > 0x3000 for char in texts["ja"])


def expected_key_frames(study) -> set[tuple[str, int]]:
    """(SOP Instance UID, 1-based frame number) of the study's key frames."""
    headers = read_sources(study).headers
    return {(str(headers[frame["path"]].SOPInstanceUID), frame["frame"] + 1)
            for side in study["keyframes"]["keyframes"].values() for frame in side}


def image_frames(items: list[pydicom.Dataset]) -> set[tuple[str, int]]:
    """(SOP Instance UID, frame number) of each frame the IMAGE items reference."""
    frames = set()
    for item in items:
        if item.ValueType != "IMAGE":
            continue
        for reference in item.ReferencedSOPSequence:
            numbers = reference.ReferencedFrameNumber
            numbers = numbers if isinstance(numbers, MultiValue) else [numbers]
            frames |= {(str(reference.ReferencedSOPInstanceUID), int(n)) for n in numbers}
    return frames


def test_the_kos_flags_exactly_the_key_frames(study, written):
    kos = pydicom.dcmread(written.kos)
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113000"
    assert image_frames(children(kos)) == expected_key_frames(study)


def test_the_sr_references_the_key_frames(study, written):
    sr = pydicom.dcmread(written.sr)
    assert image_frames(children(children(sr, "121180")[0])) == expected_key_frames(study)


def test_writing_twice_gives_the_same_uids(study, written, tmp_path):
    again = write_study_objects(study, analysed_study()[1], tmp_path, languages=("en",))

    def uids(objects: StudyObjects) -> list[tuple[str, str]]:
        return [(ds.SOPInstanceUID, ds.SeriesInstanceUID)
                for ds in map(pydicom.dcmread, objects.dicom())]

    assert uids(again) == uids(written)
    assert len({uid for pair in uids(written) for uid in pair}) == 6


def test_not_assessed_is_a_comment_never_a_coded_none(study, written):
    for lesion in lesions(pydicom.dcmread(written.sr)):
        assert not children(lesion, "122131") and not children(lesion, "122134")
        assert children(lesion, "121106")[0].TextValue == "Not assessed: thrombus, calcification."


def test_occlusion_thrombus_and_calcification_are_coded_when_assessed(study, tmp_path):
    changed = copy.deepcopy(study)
    finding = changed["study_findings"][0]
    finding.update(cto=True, grade="occluded", stenosis_percent=100.0, thrombus=True,
                   thrombus_assessed=True, calcification="severe", calcification_assessed=True)
    sr = pydicom.dcmread(write_sr(changed, read_sources(changed), tmp_path / "sr.dcm", ("en",)))
    lesion = lesions(sr)[0]

    def value(concept: str) -> str:
        return children(lesion, concept)[0].ConceptCodeSequence[0].CodeValue

    assert value(FINDING) == "1386000"  # Occlusion of artery
    assert value("122131") == "373142009"  # Degree of Thrombus: Definite Thrombus
    assert value("122134") == "237897009"  # Vessel Morphology: Calcified
    assert value("122132") == "24484000"  # Severity of Calcification: Severe
    assert not children(lesion, "121106") and not children(lesion, "246112005")


def test_a_study_without_dicom_sources_is_refused(study, tmp_path):
    video_only = copy.deepcopy(study)
    for cine in video_only["cines"]:
        cine["source"] = str(tmp_path / Path(cine["source"]).with_suffix(".mp4").name)
    with pytest.raises(InputError, match="no DICOM source with a StudyInstanceUID"):
        write_study_objects(video_only, analysed_study()[1], tmp_path / "out")
    assert not (tmp_path / "out").exists()

"""The report PDF (Japanese drawn with the CJK font), its Encapsulated PDF, the FHIR Bundle and
`angioscribe export`, on an analysed simulated study."""

from __future__ import annotations

import base64
import json
import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import pydicom
import pytest
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.errors import InputError
from angioscribe.outputs import StudyObjects, write_study_objects
from angioscribe.outputs.codes import segment_site
from angioscribe.outputs.pdf import write_report_pdf
from angioscribe.outputs.sources import read_sources
from outputs_study import analysed_study


@pytest.fixture(scope="module")
def study() -> dict[str, Any]:
    return analysed_study()[0]


@pytest.fixture(scope="module")
def written(study, tmp_path_factory) -> StudyObjects:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        objects = write_study_objects(study, analysed_study()[1],
                                      tmp_path_factory.mktemp("objects"))
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing  # matplotlib warns for each glyph the font lacks
    return objects


def unicode_map(pdf: bytes) -> set[str]:
    """Every character the PDF's ToUnicode CMaps map a glyph to: the text it can draw."""
    chars: set[str] = set()
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(stream.group(1))
        except zlib.error:
            continue
        if b"begincmap" not in data:
            continue
        for line in data.splitlines():  # "<src> <src> [<dst> ...]" or "<src> <dst>"
            hexes = re.findall(rb"<([0-9a-fA-F]+)>", line.split(b"[")[-1])
            targets = hexes if b"[" in line else hexes[1:2]
            chars |= {bytes.fromhex(h.decode()).decode("utf-16-be") for h in targets}
    return chars


def test_the_pdf_draws_the_japanese_draft_with_the_cjk_font(study, written):
    pdf = written.report_pdf.read_bytes()
    japanese = {char for char in study["drafts"]["ja"]["text"] if ord(char) > 0x3000}
    assert japanese and japanese <= unicode_map(pdf)
    assert b"NotoSansCJK" in pdf


def test_a_missing_cjk_font_is_a_clear_error(study, tmp_path):
    with pytest.raises(InputError, match="fonts-noto-cjk"):
        write_report_pdf(study, analysed_study()[1], read_sources(study), tmp_path / "r.pdf",
                         ("en", "ja"), font=tmp_path / "no-such-font.ttc")


def test_an_english_only_pdf_needs_no_cjk_font(study, tmp_path):
    path = write_report_pdf(study, analysed_study()[1], read_sources(study), tmp_path / "r.pdf",
                            ("en",), font=tmp_path / "no-such-font.ttc")
    assert path.read_bytes().startswith(b"%PDF")


def test_the_encapsulated_pdf_carries_the_report(written):
    ds = pydicom.dcmread(written.pdf)
    report = written.report_pdf.read_bytes()
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocument[:ds.EncapsulatedDocumentLength] == report


def test_the_fhir_bundle_has_one_observation_per_finding(study, written):
    bundle = json.loads(written.fhir.read_text(encoding="utf-8"))
    report, *observations = [entry["resource"] for entry in bundle["entry"]]
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "preliminary"
    assert report["conclusion"] == study["drafts"]["en"]["text"]
    pdf = next(form for form in report["presentedForm"] if form["contentType"] == "application/pdf")
    assert base64.b64decode(pdf["data"]) == written.report_pdf.read_bytes()
    assert [o["resourceType"] for o in observations] == ["Observation"] * len(observations)
    read = [(o["bodySite"]["coding"][0]["code"], o["valueQuantity"]["value"])
            for o in observations]
    assert read == [(segment_site(f["segment"]).code.value, round(f["stenosis_percent"], 2))
                    for f in study["study_findings"]]
    assert [r["reference"] for r in report["result"]] == [e["fullUrl"]
                                                          for e in bundle["entry"][1:]]


def test_export_writes_the_chosen_formats_per_study(study, tmp_path):
    result = CliRunner().invoke(app, ["export", str(analysed_study()[1]), "--out",
                                      str(tmp_path), "--format", "sr", "--format", "fhir",
                                      "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.splitlines()[-1])
    folder = Path(record["path"])
    assert folder.parent == tmp_path and record["study"] == study["key"]
    assert sorted(path.name for path in folder.iterdir()) == ["fhir.json", "report.pdf",
                                                              "sr.dcm"]


def test_export_without_an_analysis_exits_3(tmp_path):
    result = CliRunner().invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3
    assert "analysis.json" in result.output

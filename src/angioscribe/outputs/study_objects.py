"""All of a study's result objects in one call: the DICOM ones for the PACS, a PDF, FHIR.

`write_study_objects` is what `angioscribe export` and the service's worker call for each
analysed study. The DICOM objects go into the study they describe, under UIDs derived from it,
so writing them again replaces rather than duplicates them in a PACS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from angioscribe.outputs.codes import LANGUAGES
from angioscribe.outputs.fhir import write_fhir
from angioscribe.outputs.kos import key_frame_numbers, write_kos
from angioscribe.outputs.pdf import write_encapsulated_pdf, write_report_pdf
from angioscribe.outputs.sources import read_sources
from angioscribe.outputs.sr import write_sr


@dataclass(frozen=True)
class StudyObjects:
    """The files written for one study.

    `kos` is None when the study has no key frame among its DICOM sources: a key object
    selection must flag at least one object, and there is none to flag.
    """

    sr: Path  # Comprehensive SR
    kos: Path | None  # Key Object Selection of the key frames
    pdf: Path  # Encapsulated PDF of `report_pdf`
    report_pdf: Path  # the report as a plain PDF
    fhir: Path  # FHIR R4 Bundle: DiagnosticReport + Observations

    def dicom(self) -> list[Path]:
        """The DICOM objects, in the order to send them (C-STORE)."""
        return [path for path in (self.sr, self.kos, self.pdf) if path is not None]


FORMATS = ("sr", "kos", "pdf", "fhir")
"""The object kinds: Comprehensive SR, key object selection, (Encapsulated) PDF, FHIR."""


def write_study_objects(study: Mapping[str, Any], analysis_dir: Path, out_dir: Path,
                        languages: Sequence[str] = ("en", "ja")) -> StudyObjects:
    """Write the SR, key object selection, report PDF (plain and encapsulated) and FHIR
    Bundle of one analysis.json entry into `out_dir` (created).

    `analysis_dir` is the folder of analysis.json, which the study's figure paths are
    relative to; its `cines[].source` files are read for their headers. `languages` are the
    drafts included ("en", "ja"). Raises InputError when the study has no DICOM source with
    a StudyInstanceUID, or when Japanese is asked for and the CJK font is missing.
    """
    written = write_objects(study, analysis_dir, out_dir, FORMATS, languages)
    return StudyObjects(sr=written["sr"], kos=written.get("kos"), pdf=written["pdf"],
                        report_pdf=written["report_pdf"], fhir=written["fhir"])


def write_objects(study: Mapping[str, Any], analysis_dir: Path, out_dir: Path,
                  formats: Sequence[str] = FORMATS,
                  languages: Sequence[str] = ("en", "ja")) -> dict[str, Path]:
    """Write the objects of the kinds in `formats` (see `FORMATS`); returns what was written
    by kind: "sr", "kos" (not when there is no key frame), "pdf" and "report_pdf" (for
    "pdf" or "fhir", whose DiagnosticReport carries the PDF), "fhir"."""
    for name, given, known in (("languages", languages, LANGUAGES), ("formats", formats, FORMATS)):
        unknown = [value for value in given if value not in known]
        if unknown:
            raise ValueError(f"{name} {unknown} unknown; known: {', '.join(known)}")
    sources = read_sources(study)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "sr" in formats:
        written["sr"] = write_sr(study, sources, out_dir / "sr.dcm", languages)
    if "kos" in formats and key_frame_numbers(study, sources):
        written["kos"] = write_kos(study, sources, out_dir / "kos.dcm")
    if "pdf" in formats or "fhir" in formats:
        written["report_pdf"] = write_report_pdf(study, Path(analysis_dir), sources,
                                                 out_dir / "report.pdf", languages)
    if "pdf" in formats:
        written["pdf"] = write_encapsulated_pdf(written["report_pdf"], sources,
                                                out_dir / "pdf.dcm")
    if "fhir" in formats:
        written["fhir"] = write_fhir(study, sources, written["report_pdf"],
                                     out_dir / "fhir.json", languages)
    return written

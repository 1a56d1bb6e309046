"""The study's report as a PDF for people without an SR viewer, and as an Encapsulated PDF.

The PDF holds what the SR holds, for reading: the findings table, the EN and JA drafts with
the recommendation, and the overlay figures `analyze` drew. Japanese needs a CJK font; the
Noto Sans CJK font from Debian's fonts-noto-cjk is embedded (as Type 3 glyphs with a Unicode
map, so every viewer draws the same glyphs and the text can be searched and copied). The
Encapsulated PDF instance (PS3.3 A.45.1) carries the same file into the study, so a PACS
viewer shows it beside the cines.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian

from angioscribe import __version__
from angioscribe.errors import InputError
from angioscribe.outputs.sources import (
    MANUFACTURER,
    SERIES_NUMBERS,
    StudySources,
    copy_patient_study,
)
from angioscribe.report.template import study_clues, treatment_plan

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
"""Noto Sans CJK (Debian package fonts-noto-cjk): Japanese and Latin in one font."""

DOCUMENT_TITLE = "angioscribe draft report (unverified)"
PAGE_SIZE = (8.27, 11.69)  # A4 portrait, inches
FIGURES_PER_PAGE = 4
LANGUAGE_NAMES = {"en": "English", "ja": "Japanese (日本語)"}
RECOMMENDATION_LABEL = {"en": "Recommendation (guideline): ", "ja": "推奨（ガイドライン）："}
TABLE_COLUMNS = ("segment", "site", "stenosis", "grade", "MLD mm", "ref mm", "length mm",
                 "confidence", "measured in")
COLUMN_WIDTHS = (0.07, 0.17, 0.08, 0.08, 0.07, 0.07, 0.09, 0.09, 0.28)
LINE_WIDTH = 95  # half-width characters per text line at 9 pt


def cjk_font(path: Path = CJK_FONT) -> Path:
    """The CJK font file, or InputError saying how to install it."""
    if not path.is_file():
        raise InputError(path, "the Japanese font for the report PDF is missing; install "
                         "Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk) or write "
                         "English only (languages=('en',))")
    return path


def write_report_pdf(study: Mapping[str, Any], analysis_dir: Path, sources: StudySources,
                     path: Path, languages: Sequence[str], font: Path = CJK_FONT) -> Path:
    """Write the study's report PDF to `path`: a text page, then the figures four a page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.font_manager import FontProperties

    properties = FontProperties(fname=cjk_font(font)) if "ja" in languages else None
    figures = _figures(study, analysis_dir)
    metadata = {"Title": DOCUMENT_TITLE, "Creator": f"{MANUFACTURER} {__version__}",
                "CreationDate": None}  # no date: the same study gives the same file
    with matplotlib.rc_context({"pdf.fonttype": 3}), PdfPages(path, metadata=metadata) as pdf:
        page = plt.figure(figsize=PAGE_SIZE)
        _text_page(page, study, sources, languages, properties)
        pdf.savefig(page)
        plt.close(page)
        for start in range(0, len(figures), FIGURES_PER_PAGE):
            page = plt.figure(figsize=PAGE_SIZE)
            _figure_page(page, figures[start:start + FIGURES_PER_PAGE], properties)
            pdf.savefig(page)
            plt.close(page)
    return path


def _text_page(page: Any, study: Mapping[str, Any], sources: StudySources,
               languages: Sequence[str], font: Any) -> None:
    """Title, the study's identity, the findings table and the drafts, top to bottom."""
    header = sources.first
    lines = [f"Patient ID {header.get('PatientID', '')}   Study date {header.get('StudyDate', '')}",
             f"Study {sources.study_uid}",
             "Drafted by software; to be read and verified by a cardiologist."]
    page.text(0.06, 0.95, DOCUMENT_TITLE, fontsize=15, weight="bold", fontproperties=font)
    page.text(0.06, 0.93, "\n".join(lines), fontsize=8, va="top", fontproperties=font)
    findings = study.get("study_findings") or []
    table_top = 0.86
    if findings:
        axes = page.add_axes((0.06, table_top - 0.025 * (len(findings) + 1), 0.88,
                              0.025 * (len(findings) + 1)))
        axes.axis("off")
        table = axes.table(cellText=[table_row(f) for f in findings], colLabels=TABLE_COLUMNS,
                           colWidths=COLUMN_WIDTHS, loc="upper left", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        for cell in table.get_celld().values():
            cell.set_text_props(fontproperties=font, fontsize=7)
    else:
        page.text(0.06, table_top, "No lesion found.", fontsize=10, fontproperties=font)
    drafts = study.get("drafts") or {}
    plan = treatment_plan(study_clues(findings))
    y = table_top - 0.025 * (len(findings) + 1) - 0.04
    for lang in languages:
        if lang not in drafts:
            continue
        body = [*wrap(drafts[lang]["text"], lang), "",
                *wrap(f"{RECOMMENDATION_LABEL[lang]}{plan.sentence(lang)}", lang)]
        page.text(0.06, y, f"Draft report, {LANGUAGE_NAMES.get(lang, lang)} "
                  f"({drafts[lang].get('model')})", fontsize=10, fontproperties=font)
        page.text(0.06, y - 0.02, "\n".join(body), fontsize=9, va="top", linespacing=1.5,
                  fontproperties=font)
        y -= 0.06 + 0.016 * len(body)


def table_row(finding: Mapping[str, Any]) -> list[str]:
    """One findings-table row: the lesion's site, QCA values and where it was measured."""
    from angioscribe.findings import percent_text

    measured = finding.get("measured_in") or {}
    grade = "occluded" if finding.get("cto") else finding.get("grade") or ""
    confidence = finding.get("confidence")
    return [f"#{finding['segment']}", str(finding.get("label") or ""),
            percent_text(finding.get("stenosis_percent")), str(grade),
            _mm(finding.get("mld_mm")), _mm(finding.get("reference_mm")),
            _mm(finding.get("length_mm")),
            "" if confidence is None else f"{100 * float(confidence):.0f} %",
            f"{measured.get('view') or ''} frame {int(measured['frame']) + 1}" if measured else ""]


def _mm(value: float | None) -> str:
    return "" if value is None else f"{float(value):.2f}"


def wrap(text: str, language: str) -> list[str]:
    """Lines that fit the page: by words in English; in Japanese, which has no spaces, by
    characters, a full-width one counting as two."""
    if language != "ja":
        return textwrap.wrap(text, LINE_WIDTH)
    lines, line, width = [], "", 0
    for char in text:
        char_width = 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if width + char_width > LINE_WIDTH:
            lines.append(line)
            line, width = "", 0
        line, width = line + char, width + char_width
    return [*lines, line] if line else lines


def _figures(study: Mapping[str, Any], analysis_dir: Path) -> list[tuple[str, Path]]:
    """(caption, file) of the study's key-frame figure and each frame's overlay, those on disk."""
    figures = [("Key frames", study.get("figure"))]
    figures += [(f"{f.get('view') or ''} frame {int(f['frame']) + 1}"
                 f"{' (key frame)' if f.get('key_frame') else ''}", f.get("figure"))
                for f in study.get("findings") or []]
    return [(caption, analysis_dir / name) for caption, name in figures
            if name and (analysis_dir / name).is_file()]


def _figure_page(page: Any, figures: Sequence[tuple[str, Path]], font: Any) -> None:
    """Up to four figures in a 2 x 2 grid, each with its caption."""
    import matplotlib.image as mpimg

    for index, (caption, path) in enumerate(figures):
        axes = page.add_subplot(2, 2, index + 1)
        axes.imshow(mpimg.imread(path))
        axes.set_title(caption, fontsize=9, fontproperties=font)
        axes.axis("off")


def write_encapsulated_pdf(report_pdf: Path, sources: StudySources, path: Path) -> Path:
    """Write `report_pdf` as an Encapsulated PDF instance (PS3.3 A.45.1) in the study."""
    document = report_pdf.read_bytes()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = EncapsulatedPDFStorage
    ds.SOPInstanceUID = sources.uid("pdf")
    copy_patient_study(ds, sources.first)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                    "AccessionNumber"):  # type 2 in the Patient and General Study modules
        if keyword not in ds:
            setattr(ds, keyword, "")
    now = datetime.now()
    ds.Modality = "DOC"  # Encapsulated Document Series
    ds.SeriesInstanceUID = sources.uid("pdf-series")
    ds.SeriesNumber = SERIES_NUMBERS["pdf"]
    ds.SeriesDescription = DOCUMENT_TITLE
    ds.Manufacturer = MANUFACTURER  # General Equipment
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"  # SC Equipment: made on a workstation
    ds.InstanceNumber = 1  # Encapsulated Document module
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF names the patient ID
    ds.DocumentTitle = DOCUMENT_TITLE
    ds.ConceptNameCodeSequence = []
    ds.VerificationFlag = "UNVERIFIED"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = document
    ds.EncapsulatedDocumentLength = len(document)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path

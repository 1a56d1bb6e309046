"""`angioscribe export`: an analysis's studies as DICOM SR, key object selection, PDF, FHIR.

Reads ANALYSIS_DIR/analysis.json (written by `angioscribe analyze`) and writes each study's
objects into OUT/<study>/ (`angioscribe.outputs`). One record per study; exit codes follow
`angioscribe.cli.contract`. pydicom, highdicom and matplotlib are imported inside the command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from angioscribe.cli.contract import RecordSink, record_of
from angioscribe.cli.output import JsonOption
from angioscribe.cli.refusal import refuse

LANGUAGES = {"en": ("en",), "ja": ("ja",), "both": ("en", "ja")}
COLUMNS = ("study", "lesions", "written")


def export(
    analysis_dir: Annotated[
        Path, typer.Argument(help="The folder `angioscribe analyze --out` wrote (analysis.json).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the objects, one subfolder per study.")
    ] = Path("angioscribe-export"),
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="sr, kos, pdf or fhir; repeatable. Default: all four."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="Drafts to include: en, ja or both.")
                    ] = "both",
    as_json: JsonOption = False,
) -> None:
    """Write each analysed study's results as objects a PACS or an EHR takes: a Comprehensive
    SR (sr.dcm), a key object selection of the key frames (kos.dcm), the report as PDF
    (report.pdf) and as Encapsulated PDF (pdf.dcm), and a FHIR R4 Bundle (fhir.json). The DICOM
    objects join the study of the source cines, which must still be readable.

    Exit code 0 when every study was written, 1 when some failed, 3 when none was.
    """
    from angioscribe.outputs.study_objects import FORMATS, write_objects

    chosen = tuple(formats or FORMATS)
    unknown = [name for name in chosen if name not in FORMATS]
    if unknown or lang not in LANGUAGES:
        raise typer.BadParameter(f"--format takes {', '.join(FORMATS)}; --lang en, ja or both")
    studies = _read_analysis(analysis_dir, as_json)

    def folder(study: dict[str, Any]) -> Path:
        return out / re.sub(r"[^A-Za-z0-9_.-]+", "_", str(study.get("key")))

    def record(study: dict[str, Any]) -> dict[str, Any]:
        written = write_objects(study, analysis_dir, folder(study), chosen, LANGUAGES[lang])
        return {"study": study["key"], "lesions": len(study.get("study_findings") or []),
                "written": ", ".join(path.name for path in written.values()),
                **{kind: str(path) for kind, path in written.items()}}

    with RecordSink(as_json, COLUMNS) as sink:  # a record's path: the study's folder
        for study in studies:
            sink.emit(record_of(folder(study), lambda study=study: record(study)))


def _read_analysis(analysis_dir: Path, as_json: bool) -> list[dict[str, Any]]:
    """The studies of ANALYSIS_DIR/analysis.json; refuses (exit 3) when it cannot be read."""
    import json

    path = analysis_dir / "analysis.json"
    try:
        studies = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        refuse(FileNotFoundError("not found; write it with `angioscribe analyze --out "
                                 f"{analysis_dir}` first"), as_json, source=path)
    except (OSError, ValueError) as error:
        refuse(error, as_json, source=path)
    if not isinstance(studies, list):
        refuse(ValueError("not a list of studies (analysis.json of angioscribe analyze)"),
               as_json, source=path)
    return studies

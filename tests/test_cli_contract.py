"""The error contract every command shares: records, exit codes, valid JSON, readable tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.cli.contract import (
    ExitCode,
    RecordSink,
    error_record,
    finish,
    records_table,
    to_json,
)
from angioscribe.cli.segment import NO_IMAGES


def test_to_json_never_writes_nan_or_infinity():
    value = {"angle": float("nan"), "spacing": np.float32("inf"), "n": np.int64(3),
             "scores": np.array([0.5, -np.inf]), "path": Path("a/b.dcm")}
    text = to_json(value)
    assert json.loads(text) == {"angle": None, "spacing": None, "n": 3,
                                "scores": [0.5, None], "path": "a/b.dcm"}
    assert "NaN" not in text and "Infinity" not in text


def test_error_record_names_the_input_and_the_problem():
    assert error_record(Path("x/y.png"), "cannot identify image", frame=2) == {
        "path": "x/y.png", "error": "cannot identify image", "frame": 2}


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([{"path": "a"}, {"path": "b"}], ExitCode.OK),
        ([{"path": "a"}, {"path": "b", "error": "bad"}], ExitCode.SOME_FAILED),
        ([{"path": "b", "error": "bad"}], ExitCode.NOTHING_DONE),
        ([], ExitCode.NOTHING_DONE),
    ],
)
def test_sink_exits_with_the_contracts_code(records, code, capsys):
    with pytest.raises(typer.Exit) as raised, RecordSink(True, ("path",)) as sink:
        for record in records:
            sink.emit(record)
    assert raised.value.exit_code == code
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == records


def test_sink_prints_what_was_done_when_an_exception_escapes(tmp_path: Path):
    console = Console(record=True, width=80)
    sink = RecordSink(False, ("path", "frames"), console=console)
    with pytest.raises(RuntimeError), sink:
        sink.emit({"path": str(tmp_path / "IM1.dcm"), "frames": 12})
        raise RuntimeError("a bug late in the batch")
    assert "IM1.dcm" in console.export_text()


def test_finish_uses_the_same_codes():
    for done, failed, code in [(2, 0, 0), (2, 1, 1), (0, 3, 3), (0, 0, 3)]:
        with pytest.raises(typer.Exit) as raised:
            finish(done, failed)
        assert raised.value.exit_code == code


def test_table_shows_whole_names_and_problems_at_80_columns():
    parent = "/archive/hospital/cath-lab/2024/patient-0042/study-1.2.840.113619.2.55.3"
    names = ["IM-0001-0001-long-series-name.dcm", "IM-0001-0002-long-series-name.dcm"]
    records = [{"path": f"{parent}/{name}", "frames": 60, "primary_angle": -27.7,
                "secondary_angle": 18.1, "view": "LAO Cranial"} for name in names]
    problem = "RLE frame 3 is corrupt: the segment offsets point past the end of the frame"
    records.append(error_record(f"{parent}/IM-0001-0003.dcm", problem))
    console = Console(record=True, width=80)
    console.print(records_table(records, ("path", "frames", "primary_angle",
                                          "secondary_angle", "view", "error")))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    unfolded = text.replace(" ", "").replace("\n", "")
    for name in names:
        assert name in unfolded  # folded onto lines if it must, never cut to "IM-00…"
    assert parent not in text.split("paths relative to")[0]  # names, not whole paths
    assert "…" not in text
    assert f"IM-0001-0003.dcm: {problem}".replace(" ", "") in unfolded
    assert f"paths relative to {parent}".replace(" ", "") in unfolded


# --- the contract in the image and cine commands, on real data -----------------------------

runner = CliRunner()
ARCADE_VAL = Path("arcade/syntax/val/images")
REAL_CINE = Path("cine/clinical-lca/Projection_0")


def json_lines(text: str) -> list[dict]:
    """Every non-empty line as strict JSON (NaN/Infinity refused)."""
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line.strip()]


@pytest.fixture
def image_batch(shared_data: Path, tmp_path: Path) -> tuple[Path, list[Path], Path]:
    """A folder of three separate real ARCADE images (small copies) and one that is broken."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    good = []
    for name in ("1.jpg", "2.jpg", "3.jpg"):
        with Image.open(shared_data / ARCADE_VAL / name) as image:
            image.resize((128, 128)).save(folder / name)
        good.append(folder / name)
    broken = folder / "4.jpg"
    broken.write_bytes((folder / "1.jpg").read_bytes()[:40])
    return folder, good, broken


def test_classify_scores_a_folder_of_separate_images_by_file(image_batch, tmp_path: Path):
    folder, good, broken = image_batch
    out = tmp_path / "scores.jsonl"
    result = runner.invoke(app, ["classify", str(folder), "--out", str(out)])
    assert result.exit_code == ExitCode.SOME_FAILED, result.output
    records = json_lines(out.read_text())
    assert [record["path"] for record in records] == [str(path) for path in [*good, broken]]
    assert all(record["frame"] == 0 and len(record["scores"]) == 6 for record in records[:3])
    assert set(records[3]) == {"path", "error"} and "4.jpg" in records[3]["path"]


def test_classify_reads_a_frame_folder_with_its_header_as_one_cine(shared_data: Path,
                                                                   tmp_path: Path):
    cine = shared_data / REAL_CINE
    out = tmp_path / "scores.jsonl"
    assert runner.invoke(app, ["classify", str(cine), "--out", str(out)]).exit_code == 0
    assert {record["path"] for record in json_lines(out.read_text())} == {str(cine)}
    as_images = runner.invoke(app, ["classify", str(cine), "--out", str(out),
                                    "--folders", "images"])
    assert as_images.exit_code == 0
    paths = [record["path"] for record in json_lines(out.read_text())]
    assert len(paths) == 37 and paths[0].endswith("IM0_01.jpg")


def test_keyframes_reports_an_unreadable_cine_and_an_unknown_side(shared_data: Path,
                                                                  tmp_path: Path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "Projection_0").symlink_to(shared_data / REAL_CINE)
    broken = study / "broken.dcm"
    broken.write_bytes(b"DICM and nothing else")
    result = runner.invoke(app, ["keyframes", str(study), "--json"])
    assert result.exit_code == ExitCode.SOME_FAILED, result.output
    error, verdict = json_lines(result.stdout)
    assert error["path"] == str(broken) and error["error"]
    assert verdict["keyframes"]["LCA"][0]["laterality"] == "LCA"
    assert verdict["missing"]["RCA"].startswith("unknown: 1 cine could not be read")
    assert "WARNING" not in result.stderr


def segment(folder: Path, out: Path) -> tuple[int, dict]:
    result = runner.invoke(app, ["segment", str(folder), "--task", "syntax", "--out", str(out)])
    return result.exit_code, json.loads(out.read_text())


def test_segment_goes_on_past_bad_files_and_lists_them(image_batch, shared_data: Path,
                                                       tmp_path: Path):
    folder, good, broken = image_batch
    dicom = folder / "IM1.dcm"
    dicom.symlink_to(shared_data / "dicom" / "phantom-xa" / "IM1.dcm")
    code, results = segment(folder, tmp_path / "pred.json")
    assert code == ExitCode.SOME_FAILED
    assert [image["file_name"] for image in results["images"]] == [path.name for path in good]
    assert {image["id"] for image in results["images"]} == {1, 2, 3}
    assert [error["path"] for error in results["errors"]] == [str(broken), str(dicom)]
    assert "not an image" in results["errors"][1]["error"]


def test_segment_refuses_a_folder_without_images(shared_data: Path, tmp_path: Path):
    only_dicom = tmp_path / "dicom"
    only_dicom.mkdir()
    (only_dicom / "IM1.dcm").symlink_to(shared_data / "dicom" / "phantom-xa" / "IM1.dcm")
    code, results = segment(only_dicom, tmp_path / "a.json")
    assert code == ExitCode.NOTHING_DONE and results["images"] == []
    assert results["errors"][0]["path"] == str(only_dicom / "IM1.dcm")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, results = segment(empty, tmp_path / "b.json")
    assert code == ExitCode.NOTHING_DONE
    assert results["errors"] == [{"path": str(empty), "error": NO_IMAGES}]


def test_the_command_line_starts_without_heavy_libraries():
    """`angioscribe --help` must stay fast: no command module imports these at the top."""
    heavy = ("torch", "timm", "transformers", "pandas", "matplotlib", "pydicom", "cv2",
             "scipy", "sklearn", "PIL")
    code = ("import sys, angioscribe.cli; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""


LOGGING_SCRIPT = """
import logging, sys, warnings
from angioscribe.logs import configure_logging
configure_logging(verbose=sys.argv[1] == "verbose")
configure_logging(verbose=sys.argv[1] == "verbose")  # once: no second handler
logging.getLogger("pydicom").warning("odd tag value")
warnings.warn("a library's deprecation", UserWarning, stacklevel=1)
logging.getLogger("angioscribe.io").warning("our own warning")
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_library_logs_and_python_warnings_go_through_one_handler(mode: str):
    """pydicom's logger and `warnings.warn` reach stderr only through angioscribe's handler
    (one line each, never Python's raw `WARNING:name:` format), and only with --verbose: what
    they say about an input is already in its record."""
    result = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT, mode], capture_output=True,
                            text=True, check=True, env={**os.environ, "COLUMNS": "100"})
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert [line.split()[0] for line in lines] == ["WARNING"] * len(lines)
    assert sum("our own warning" in line for line in lines) == 1
    library = [line for line in lines if "odd tag value" in line or "deprecation" in line]
    if mode == "quiet":
        assert library == []
    else:
        assert len(library) == 2 and "pydicom: odd tag value" in library[0]

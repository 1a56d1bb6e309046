"""`angioscribe ingest` and `angioscribe frames` through the real typer app."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from angioscribe.anatomy import view_from_angles
from angioscribe.cli import app
from angioscribe.frames import candidate_frames
from angioscribe.io import read_cine

runner = CliRunner()


def run(*arguments: str | Path) -> tuple[int, list[dict]]:
    """Exit code and the JSON records printed on stdout (every line must be one)."""
    result = runner.invoke(app, [str(argument) for argument in arguments])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, [json.loads(line) for line in lines]


@pytest.fixture
def not_dicom(tmp_path: Path) -> Path:
    path = tmp_path / "renamed.dcm"
    path.write_text("this is a text file\n")
    return path


@pytest.fixture
def real_cine(shared_data: Path) -> Path:
    return shared_data / "cine" / "clinical-lca" / "Projection_0"


def test_ingest_reports_every_input_and_goes_on_past_bad_ones(
    shared_data: Path, real_cine: Path, not_dicom: Path
):
    phantom = shared_data / "dicom" / "phantom-xa"
    code, records = run("ingest", "--json", not_dicom, phantom, real_cine)
    assert code == 1, "some inputs failed, the rest were read"
    assert [Path(record["path"]) for record in records] == [
        not_dicom,
        *sorted(phantom.glob("IM*.dcm")),
        real_cine,
    ]
    assert "not a DICOM file" in records[0]["error"]
    for record in records[1:5]:
        header = pydicom.dcmread(record["path"], stop_before_pixels=True)
        assert record["frames"] == header.NumberOfFrames
        assert (record["rows"], record["cols"]) == (header.Rows, header.Columns)
        assert record["primary_angle"] == pytest.approx(float(header.PositionerPrimaryAngle))
        assert record["fps"] == pytest.approx(1000 / float(header.FrameTime), abs=1e-3)
        assert "error" not in record
    cine = records[-1]
    assert (cine["frames"], cine["primary_angle"], cine["secondary_angle"]) == (37, -27.7, -18.1)
    assert cine["view"] == view_from_angles(-27.7, -18.1)


def test_ingest_exits_3_when_every_input_failed(tmp_path: Path, not_dicom: Path):
    missing = tmp_path / "missing.dcm"
    code, records = run("ingest", "--json", not_dicom, missing)
    assert code == 3
    assert [record["error"] for record in records] == [
        records[0]["error"],
        "no such file or folder",
    ]


def test_ingest_prints_a_table_without_json(real_cine: Path):
    result = runner.invoke(app, ["ingest", str(real_cine)])
    assert result.exit_code == 0
    assert "frames" in result.stdout and "37" in result.stdout  # a table, not JSON


def test_frames_lists_candidates_of_the_real_cine(real_cine: Path, not_dicom: Path):
    code, records = run("frames", "--json", real_cine, not_dicom)
    assert code == 1
    cine, bad = records
    assert "error" in bad
    expected = candidate_frames(read_cine(real_cine).frames)
    assert cine["candidates"] == [candidate.index for candidate in expected]
    assert len(cine["candidates"]) == len(cine["kinds"]) == len(cine["opacification"]) > 0
    top = cine["candidates"][cine["opacification"].index(max(cine["opacification"]))]
    assert top >= 3, "the first frames are taken before the contrast arrives"


def test_frames_respects_min_gap(real_cine: Path):
    code, records = run("frames", "--json", "--min-gap", "10", real_cine)
    assert code == 0
    indices = records[0]["candidates"]
    assert all(later - earlier >= 10 for earlier, later in pairwise(indices))


def test_frames_rejects_a_zero_gap(real_cine: Path):
    assert runner.invoke(app, ["frames", "--min-gap", "0", str(real_cine)]).exit_code != 0


def strict_json(line: str) -> dict:
    """Parse one line, refusing the NaN/Infinity tokens Python's json would let through."""
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(line, parse_constant=refuse)


def test_a_batch_goes_on_past_an_unexpected_error_and_prints_each_record_when_done(
    shared_data: Path, real_cine: Path, monkeypatch: pytest.MonkeyPatch
):
    """A bug on one input is that input's error record; each record is on stdout (flushed)
    before the next input is read, so a batch killed late keeps what it did."""
    import sys

    import angioscribe.io

    phantom = sorted((shared_data / "dicom" / "phantom-xa").glob("IM*.dcm"))[:2]
    real_read = angioscribe.io.read_cine
    printed_before: list[int] = []

    def read_or_fail(path: Path):
        printed_before.append(sys.stdout.buffer.getvalue().count(b"\n"))
        if path == phantom[0]:
            raise RuntimeError("a codec bug")
        return real_read(path)

    monkeypatch.setattr(angioscribe.io, "read_cine", read_or_fail)
    code, records = run("ingest", "--json", *phantom, real_cine)
    assert code == 1
    assert [record["path"] for record in records] == [str(p) for p in [*phantom, real_cine]]
    assert "RuntimeError: a codec bug" in records[0]["error"]
    assert all("error" not in record for record in records[1:])
    assert printed_before == [0, 1, 2]


def test_json_has_no_nan_even_when_the_header_has_one(tmp_path: Path):
    from PIL import Image

    folder = tmp_path / "cine"
    folder.mkdir()
    for index in range(3):
        Image.new("L", (32, 32), color=40 * index).save(folder / f"IM_{index}.png")
    (folder / "header.json").write_text('{"fps": NaN, "primary_angle": Infinity}')
    result = runner.invoke(app, ["ingest", "--json", str(folder)])
    (line,) = result.stdout.splitlines()
    record = strict_json(line)
    assert record["path"] == str(folder)
    assert "error" in record or (record["fps"], record["primary_angle"]) == (None, None)


def test_no_inputs_found_exits_3(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, records = run("frames", "--json", empty)
    assert code == 3
    assert [record["path"] for record in records] == [str(empty)]
    assert "no cine found" in records[0]["error"]


def test_table_names_inputs_relative_to_their_folder_at_80_columns(shared_data: Path):
    phantom = shared_data / "dicom" / "phantom-xa"
    result = runner.invoke(app, ["ingest", str(phantom)], terminal_width=80)
    assert result.exit_code == 0
    assert all(f"IM{n}.dcm" in result.stdout for n in range(1, 5))
    assert "…" not in result.stdout


def test_header_values_dropped_by_the_reader_are_warnings_in_the_record(
    shared_data: Path, tmp_path: Path
):
    odd = tmp_path / "odd.dcm"
    dataset = pydicom.dcmread(shared_data / "dicom" / "phantom-xa" / "IM1.dcm")
    dataset.PositionerPrimaryAngle = "999"
    dataset.save_as(odd)
    result = runner.invoke(app, ["ingest", "--json", str(odd)])
    assert result.exit_code == 0
    (record,) = [strict_json(line) for line in result.stdout.splitlines()]
    assert record["primary_angle"] is None and record["view"] is None
    assert any("PositionerPrimaryAngle" in warning for warning in record["warnings"])
    table = runner.invoke(app, ["ingest", str(odd)], terminal_width=80).stdout
    assert "warning: odd.dcm: PositionerPrimaryAngle" in table

"""The error contract every command shares: records, exit codes, valid JSON, readable tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from rich.console import Console

from angioscribe.cli.contract import (
    ExitCode,
    RecordSink,
    error_record,
    finish,
    records_table,
    to_json,
)


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

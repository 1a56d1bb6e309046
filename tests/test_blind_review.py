"""Blind review: drafts shuffled and blinded on export, unblinded and tabulated on import."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.errors import InputError
from angioscribe.evaluate.blind_review import SHEET_COLUMNS, export_review, import_review
from angioscribe.evaluate.report_tables import error_table
from angioscribe.report.parse import parse_report
from angioscribe.report.records import Draft, Truth

MODELS = ("gemma3-lora", "paligemma2-lora", "conceptclip-gemma3")


def _drafts(cases: int = 4) -> list[Draft]:
    return [
        Draft(f"case{c}", model, f"{model} says LCX #11 {70 + c}% stenosis")
        for model in MODELS
        for c in range(cases)
    ]


def _fill(sheet, score_of) -> None:
    rows = list(csv.DictReader(sheet.open(encoding="utf-8")))
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, SHEET_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, **score_of(row)})


def test_export_blinds_and_shuffles_with_a_seed(tmp_path):
    written = export_review(_drafts(), tmp_path / "a", seed=7)
    again = export_review(_drafts(), tmp_path / "b", seed=7)
    other = export_review(_drafts(), tmp_path / "c", seed=8)
    rows = list(csv.DictReader(written["sheet"].open(encoding="utf-8")))
    assert len(rows) == 12 and len({r["review_id"] for r in rows}) == 12
    key = json.loads(written["key"].read_text())["drafts"]
    shown_models = [key[r["review_id"]]["model"] for r in rows]
    assert shown_models != sorted(shown_models, key=MODELS.index)
    assert written["sheet"].read_text() == again["sheet"].read_text()
    assert written["sheet"].read_text() != other["sheet"].read_text()
    assert all(rows[i]["draft"].startswith(key[rows[i]["review_id"]]["model"]) for i in range(12))


def test_sheet_and_page_do_not_name_the_models(tmp_path):
    drafts = [Draft("case0", model, "LAD #7 90% stenosis.") for model in MODELS]
    written = export_review(drafts, tmp_path, seed=1)
    for file in (written["sheet"], written["page"]):
        assert not any(model in file.read_text() for model in MODELS)
    assert all(model in written["key"].read_text() for model in MODELS)


def test_page_is_self_contained_with_the_image_inlined(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "frame.png")
    truth = Truth(
        "case0", parse_report("LCX #11 75%"), "LCX #11 shows 75% stenosis.", tmp_path / "frame.png"
    )
    written = export_review(
        [Draft("case0", "m", "LCX #12 <90%>")], tmp_path / "out", 0, {"case0": truth}
    )
    page = written["page"].read_text()
    assert "data:image/png;base64," in page
    assert "LCX #12 &lt;90%&gt;" in page and "<90%>" not in page
    assert 'src="http' not in page and "Reference:" in page


def test_import_unblinds_into_table_4(tmp_path):
    written = export_review(_drafts(), tmp_path, seed=3)
    key = json.loads(written["key"].read_text())["drafts"]
    best = {"gemma3-lora": "8", "paligemma2-lora": "6", "conceptclip-gemma3": "7"}
    _fill(
        written["sheet"],
        lambda row: {
            "overall": best[key[row["review_id"]]["model"]],
            "vessel_errors": "1" if key[row["review_id"]]["model"] == "paligemma2-lora" else "",
        },
    )
    scores = import_review(written["sheet"], written["key"])
    rows = {r["model"]: r for r in error_table(scores, n_boot=100)}
    assert rows["gemma3-lora"]["score_mean"] == 8 and rows["paligemma2-lora"]["score_mean"] == 6
    assert (
        rows["paligemma2-lora"]["vessel_drafts"] == 4 and rows["gemma3-lora"]["vessel_drafts"] == 0
    )


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ({"overall": "11"}, "outside 0-10"),
        ({"overall": ""}, "not a number"),
        ({"overall": "5", "logical_errors": "two"}, "logical_errors 'two' is not a count"),
    ],
)
def test_bad_cells_name_the_line(tmp_path, cell, message):
    written = export_review(_drafts(1), tmp_path, seed=0)
    _fill(
        written["sheet"],
        lambda row: {"overall": "5", **(cell if row["review_id"] == "R002" else {})},
    )
    with pytest.raises(InputError, match=f"review_sheet.csv:3: .*{message}"):
        import_review(written["sheet"], written["key"])


def test_unscored_drafts_are_refused(tmp_path):
    written = export_review(_drafts(1), tmp_path, seed=0)
    lines = written["sheet"].read_text().splitlines()
    written["sheet"].write_text("\n".join(lines[:-1]) + "\n")
    _fill(written["sheet"], lambda row: {"overall": "5"})
    with pytest.raises(InputError, match="1 drafts of the key are not scored"):
        import_review(written["sheet"], written["key"])


def test_review_commands_round_trip(tmp_path):
    pred = tmp_path / "drafts.jsonl"
    pred.write_text(
        "".join(
            json.dumps({"id": d.case_id, "model": d.model, "text": d.text}) + "\n"
            for d in _drafts(3)
        )
    )
    runner = CliRunner()
    exported = runner.invoke(
        app,
        ["review", "export", "--pred", str(pred), "--out", str(tmp_path / "review"), "--seed", "5"],
    )
    assert exported.exit_code == 0, exported.output
    sheet = tmp_path / "review" / "review_sheet.csv"
    _fill(sheet, lambda row: {"overall": str(int(row["review_id"][1:]) % 11)})
    imported = runner.invoke(
        app,
        [
            "review",
            "import",
            str(sheet),
            "--key",
            str(tmp_path / "review" / "review_key.json"),
            "--out",
            str(tmp_path / "table"),
            "--json",
            "--n-boot",
            "50",
        ],
    )
    assert imported.exit_code == 0, imported.output
    rows = [json.loads(line) for line in imported.stdout.splitlines()]
    assert {r["model"] for r in rows} == set(MODELS) and all(r["n"] == 3 for r in rows)
    assert (tmp_path / "table" / "review_scores.png").stat().st_size > 0


def test_review_commands_refuse_bad_files_naming_them(tmp_path):
    """Exit 3 (nothing done) and the file and line at fault, never a traceback."""
    broken = tmp_path / "drafts.jsonl"
    broken.write_text(json.dumps({"id": "c1", "text": "LAD 90%"}) + "\n{not json\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    runner = CliRunner()
    for pred, problem in ((broken, f"{broken}:2: not valid JSON"), (empty, f"{empty}: no draft")):
        result = runner.invoke(app, ["review", "export", "--pred", str(pred),
                                     "--out", str(tmp_path / "review")])
        assert result.exit_code == 3 and problem in result.output, result.output
    assert not (tmp_path / "review").exists()
    written = export_review(_drafts(1), tmp_path / "set", seed=0)
    result = runner.invoke(app, ["review", "import", str(tmp_path / "missing.csv"),
                                 "--key", str(written["key"]), "--json"])
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert json.loads(result.stdout)["path"] == str(tmp_path / "missing.csv")
    result = runner.invoke(app, ["review", "import", str(written["sheet"]),
                                 "--key", str(written["sheet"])])
    assert result.exit_code == 3 and "not a review key" in result.output

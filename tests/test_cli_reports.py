"""`angioscribe parse-report` and `angioscribe evaluate reports` from the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from angioscribe.cli import app

runner = CliRunner()
PAPER_EN = (
    "LCX #11 shows 75% stenosis. Consider treatment plan in context of other angiographic "
    "findings and comorbidities."
)


def test_parse_report_txt_one_record_per_line(tmp_path):
    reports = tmp_path / "reports.txt"
    reports.write_text(f"{PAPER_EN}\n\nLADに有意狭窄なし。RCA #1は完全閉塞。\n", encoding="utf-8")
    result = runner.invoke(app, ["parse-report", str(reports), "--json"])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert (first["line"], first["lang"], first["recommendation"]) == (1, "en", "treatment_review")
    assert [(f["segment"], f["stenosis_percent"]) for f in first["findings"]] == [("11", 75)]
    assert (second["line"], second["lang"], second["laterality"]) == (3, "ja", "both")
    assert [(f["vessel"], f["negated"], f["cto"]) for f in second["findings"]] == [
        ("LAD", True, False),
        ("RCA", False, True),
    ]
    assert set(first["findings"][0]) >= {
        "segment",
        "stenosis_percent",
        "cto",
        "thrombus",
        "calcification",
        "negated",
    }


def test_parse_report_jsonl_reads_text_and_keeps_going_past_bad_lines(tmp_path):
    reports = tmp_path / "reports.jsonl"
    reports.write_text(
        json.dumps({"id": "a", "text": "#6 90%"})
        + "\n{broken\n"
        + json.dumps({"id": "b", "note": "no text"})
        + "\n"
    )
    result = runner.invoke(app, ["parse-report", str(reports), "--json", "--lang", "en"])
    assert result.exit_code == 1, result.output  # some failed, the rest parsed
    good, broken, textless = (json.loads(line) for line in result.stdout.splitlines())
    assert good["id"] == "a" and good["findings"][0]["segment"] == "6"
    assert broken["line"] == 2 and broken["error"].startswith("not valid JSON")
    assert textless["line"] == 3 and "string `text` field" in textless["error"]
    assert {good["path"], broken["path"], textless["path"]} == {str(reports)}


def test_parse_report_exits_3_when_nothing_parsed(tmp_path):
    result = runner.invoke(app, ["parse-report", str(tmp_path / "missing.txt"), "--json"])
    assert result.exit_code == 3
    record = json.loads(result.stdout)
    assert record["path"] == str(tmp_path / "missing.txt") and "cannot read" in record["error"]


def test_parse_report_an_empty_file_is_an_error_naming_it(tmp_path):
    empty, blank, good = tmp_path / "empty.txt", tmp_path / "blank.jsonl", tmp_path / "good.txt"
    empty.write_text("")
    blank.write_text("\n  \n")
    good.write_text("RCA #2 99%\n")
    result = runner.invoke(app, ["parse-report", str(empty), "--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {"path": str(empty), "error": (
        "no reports in the file (it is empty or has only blank lines)")}
    result = runner.invoke(app, ["parse-report", str(empty), str(blank), str(good), "--json"])
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["path"], "error" in r) for r in records] == [
        (str(empty), True), (str(blank), True), (str(good), False)]


def test_parse_report_table_for_people(tmp_path):
    reports = tmp_path / "r.txt"
    reports.write_text("RCA #2 99% with thrombus; recommend PCI.\n")
    result = runner.invoke(app, ["parse-report", str(reports)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "#2 99% thrombus" in result.stdout and "pci" in result.stdout


def _write_study(tmp_path):
    truth = tmp_path / "truth.jsonl"
    truth.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {
                    "id": "c1",
                    "patient_id": "p1",
                    "laterality": "LCA",
                    "text": PAPER_EN,
                    "findings": [{"segment": "11", "stenosis_percent": 75}],
                    "recommendation": "pci",
                },
                {"id": "c2", "patient_id": "p1", "text": "RCA #2に90%狭窄。PCIを推奨。"},
            ]
        ),
        encoding="utf-8",
    )
    pred = tmp_path / "gemma.jsonl"
    pred.write_text(
        "".join(
            json.dumps(r, ensure_ascii=False) + "\n"
            for r in [
                {
                    "id": "c1",
                    "model": "gemma",
                    "text": "LCX #12 shows 90% stenosis. Consider treatment plan.",
                },
                {"id": "c2", "model": "gemma", "text": "RCA #2に90%狭窄。PCIを推奨。"},
            ]
        ),
        encoding="utf-8",
    )
    return truth, pred


def test_evaluate_reports_prints_table_4_and_writes_outputs(tmp_path):
    truth, pred = _write_study(tmp_path)
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "reports",
            "--pred",
            str(pred),
            "--truth",
            str(truth),
            "--out",
            str(out),
            "--json",
            "--n-boot",
            "50",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    (errors,) = [r for r in rows if r["table"] == "errors"]
    assert (errors["model"], errors["n"], errors["vessel_drafts"]) == ("gemma", 2, 1)
    assert errors["vessel_rate"] == 0.5 and errors["treatment_drafts"] == 0
    metrics = {r["metric"]: r for r in rows if r["table"] == "metrics"}
    assert metrics["bleu4"]["n"] == 2 and 0 < metrics["bleu4"]["mean"] < 1
    per_draft = [json.loads(line) for line in (out / "per_draft.jsonl").read_text().splitlines()]
    assert per_draft[1]["metrics"]["bleu4"] == 1.0 and per_draft[0]["group"] == "p1"
    assert per_draft[0]["reasons"] == ["vessel: #12 90% stands for true #11 75%"]
    assert (out / "text_metrics.png").stat().st_size > 0


def test_evaluate_reports_names_a_draft_without_truth(tmp_path):
    truth, pred = _write_study(tmp_path)
    stray = tmp_path / "stray.jsonl"
    stray.write_text(json.dumps({"id": "c9", "text": "LAD 90%"}) + "\n")
    result = runner.invoke(
        app, ["evaluate", "reports", "--pred", str(stray), "--truth", str(truth)]
    )
    assert result.exit_code == 3
    assert f"{stray}: no draft id is in the truth file {truth} (e.g. id 'c9')" in result.output
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", "reports", "--pred", str(pred), "--pred",
                                 str(stray), "--truth", str(truth), "--json", "--n-boot", "10",
                                 "--out", str(out)])
    assert result.exit_code == 1, result.output  # the matching drafts are scored
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    failed = {"path": str(stray), "id": "c9", "error": f"no truth record for id 'c9' in {truth}"}
    assert rows[0] == failed
    assert [r["n"] for r in rows if r.get("table") == "errors"] == [2]
    assert json.loads((out / "tables.json").read_text())["failed_inputs"] == [failed]
    assert len((out / "per_draft.jsonl").read_text().splitlines()) == 2


def test_evaluate_reports_refuses_an_empty_pred_or_truth(tmp_path):
    truth, pred = _write_study(tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for given in (["--pred", str(empty), "--truth", str(truth)],
                  ["--pred", str(pred), "--truth", str(empty)]):
        result = runner.invoke(app, ["evaluate", "reports", *given, "--json"])
        assert result.exit_code == 3, result.output
        record = json.loads(result.stdout)
        assert record["path"] == str(empty) and "empty" in record["error"]
    result = runner.invoke(app, ["evaluate", "reports", "--pred", str(tmp_path / "nope.jsonl"),
                                 "--truth", str(truth)])
    assert result.exit_code == 3 and "nope.jsonl" in result.output
    assert "Traceback" not in result.output

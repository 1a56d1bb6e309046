"""`evaluate findings`: a study's findings matched to the simulator's truth by segment, with
the rates, the % error, false findings, the error contract and the written outputs."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from angioscribe.anatomy import SEGMENTS
from angioscribe.cli import app
from angioscribe.evaluate.findings_truth import (
    StudyTruth,
    compare_study,
    findings_metrics,
    read_truth,
)
from angioscribe.qca import grade
from angioscribe.sim import simulate_study, write_study

SIM_SEED = 23


def finding(segment: str, percent: float, cto: bool = False, views: int = 1) -> dict:
    """A study finding as analysis.json's `study_findings` lists it (the keys read here)."""
    return {"segment": segment, "stenosis_percent": percent, "grade": grade(percent, cto),
            "cto": cto, "confidence": 0.8,
            "views": [{"path": "x.dcm", "frame": k, "stenosis_percent": percent}
                      for k in range(views)]}


def truth_with(*lesions: tuple[str, int], patient: str = "P1") -> StudyTruth:
    return StudyTruth(Path(patient), patient, patient, 0, f"uid-{patient}",
                      [{"segment": s, "stenosis_percent": p, "cto": p == 100} for s, p in lesions],
                      [])


def test_findings_are_matched_to_truth_lesions_by_segment():
    """#6 found 5 points low, the #1 occlusion found and called one, #13 named as #12a (a miss
    and a false finding), the mild #3 missed."""
    truth = truth_with(("6", 75), ("1", 100), ("13", 50), ("3", 25))
    analysis = {"study_findings": [finding("1", 100.0, cto=True, views=2), finding("6", 70.0),
                                   finding("12a", 60.0)],
                "errors": [{"path": "05_LCA.dcm", "error": "truncated"}],
                "keyframes": {"missing": {"RCA": "no RCA frame"}}}
    comparison = compare_study(truth, analysis)
    outcomes = {m.segment: m.outcome for m in comparison.matches}
    assert outcomes == {"1": "found", "3": "missed", "6": "found", "12a": "false",
                        "13": "missed"}
    order = list(SEGMENTS)
    assert [m.segment for m in comparison.matches] == sorted(outcomes, key=order.index)
    six = next(m for m in comparison.matches if m.segment == "6")
    assert six.error == -5.0 and six.grade == "severe" and six.views == 1
    assert comparison.warnings == ["05_LCA.dcm: truncated", "no RCA key frame: no RCA frame"]
    record = comparison.to_record()
    assert record["found"] == "2/4" and record["false"] == 1
    assert record["truth"] == "#1 CTO, #3 25 %, #6 75 %, #13 50 %"

    metrics = {row["metric"]: row for row in findings_metrics([comparison], resamples=100)}
    assert metrics["stenosis_mae"]["value"] == pytest.approx(2.5)  # |-5| and the CTO's 0
    assert metrics["stenosis_mae"]["met"] is True
    assert metrics["stenosis_bias"]["value"] == pytest.approx(-2.5)
    assert metrics["lesions_found"]["value"] == pytest.approx(0.5)
    assert metrics["significant_found"]["n"] == 3
    assert metrics["significant_found"]["value"] == pytest.approx(2 / 3)
    assert metrics["significant_found"]["met"] is False
    assert metrics["occlusions_found"]["value"] == 1.0
    assert metrics["false_findings_per_study"]["value"] == 1.0
    assert metrics["false_significant_per_study"]["value"] == 1.0  # #12a read as 60 %
    assert metrics["precision"]["value"] == pytest.approx(2 / 3)


def test_an_occlusion_read_as_a_stenosis_is_found_but_not_as_an_occlusion():
    comparison = compare_study(truth_with(("7", 100)), {"study_findings": [finding("7", 92.0)]})
    metrics = {row["metric"]: row for row in findings_metrics([comparison], resamples=100)}
    assert metrics["lesions_found"]["value"] == 1.0
    assert metrics["occlusions_found"]["value"] == 0.0
    assert metrics["stenosis_mae"]["value"] == pytest.approx(8.0)


def test_intervals_resample_patients():
    """Two patients, one with every lesion found, one with none: the CI of the share found
    spans both; with nothing to measure a metric has no value rather than a made-up one."""
    all_found = compare_study(truth_with(("6", 90), ("7", 75), patient="A"),
                              {"study_findings": [finding("6", 85.0), finding("7", 70.0)]})
    none_found = compare_study(truth_with(("2", 50), patient="B"), {"study_findings": []})
    metrics = {row["metric"]: row for row in findings_metrics([all_found, none_found], 400)}
    found = metrics["lesions_found"]
    assert found["value"] == pytest.approx(2 / 3)
    assert found["ci95"][0] < found["value"] < found["ci95"][1]
    assert metrics["occlusions_found"]["value"] is None and metrics["occlusions_found"]["n"] == 0


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder with one simulated study (one left, one right view)."""
    folder = tmp_path_factory.mktemp("sim")
    write_study(simulate_study(SIM_SEED, 1, 1), folder)
    return folder


def analysis_for(folder: Path, tmp_path: Path) -> Path:
    """An analysis.json that finds every truth lesion 6 points high and adds one false finding
    on a segment without a lesion."""
    truth = read_truth(folder)
    findings = [finding(lesion["segment"], min(lesion["stenosis_percent"] + 6, 100),
                        lesion["cto"]) for lesion in truth.lesions]
    healthy = next(s for s in SEGMENTS if s not in {lesion["segment"] for lesion in truth.lesions})
    findings.append(finding(healthy, 55.0))
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps([{"key": truth.study_uid, "study_findings": findings,
                                 "errors": [], "keyframes": {"missing": {}}}]))
    return path


def test_cli_scores_an_analysis_json_and_writes_its_outputs(sim_dataset, tmp_path):
    (study,) = [p.parent for p in sim_dataset.glob("*/truth.json")]
    truth = read_truth(study)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", "findings", str(sim_dataset), "--analysis",
                                      str(analysis_for(study, tmp_path)), "--out", str(out),
                                      "--resamples", "100", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    record, metrics = lines[0], {row["metric"]: row for row in lines[1:]}
    assert record["path"] == str(study) and record["false"] == 1
    assert record["found"] == f"{len(truth.lesions)}/{len(truth.lesions)}"
    assert metrics["false_findings_per_study"]["value"] == 1.0
    assert metrics["false_significant_per_study"]["value"] == 1.0  # the false one is 55 %
    assert metrics["precision"]["value"] == pytest.approx(
        len(truth.lesions) / (len(truth.lesions) + 1))
    graded = [lesion for lesion in truth.lesions if lesion["stenosis_percent"] < 100]
    if graded:  # every graded lesion 6 points high (a CTO's 100 % is exact)
        assert 0 < metrics["stenosis_mae"]["value"] <= 6.0
    with (out / "findings-lesions.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(truth.lesions) + 1
    assert {row["outcome"] for row in rows} <= {"found", "false"}
    assert (out / "findings-truth.png").stat().st_size > 10_000
    saved = json.loads((out / "findings-metrics.json").read_text())
    assert [row["metric"] for row in saved["metrics"]] == list(metrics)


def test_cli_reports_studies_it_cannot_score_and_goes_on(sim_dataset, tmp_path):
    (study,) = [p.parent for p in sim_dataset.glob("*/truth.json")]
    analysis = analysis_for(study, tmp_path)
    not_sim = tmp_path / "not-a-study"
    not_sim.mkdir()
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "findings", str(not_sim), str(sim_dataset),
                                 "--analysis", str(analysis), "--json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout.splitlines()[0])
    assert error["path"] == str(not_sim) and "truth.json" in error["error"]

    analysis.write_text(json.dumps([{"key": "another-study", "study_findings": []}]))
    result = runner.invoke(app, ["evaluate", "findings", str(sim_dataset), "--analysis",
                                 str(analysis), "--json"])
    assert result.exit_code == 3, result.output
    (error,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert error["path"] == str(study) and "StudyInstanceUID" in error["error"]

    analysis.write_text("{not json")
    result = runner.invoke(app, ["evaluate", "findings", str(sim_dataset), "--analysis",
                                 str(analysis)])
    assert result.exit_code == 3 and "analysis.json" in result.output


@pytest.mark.slow
def test_cli_runs_the_chain_and_keeps_its_analysis(tmp_path):
    """Without --analysis the chain runs on the study (one left view: the models take a few
    seconds); its analysis.json, scored again with --analysis, gives the same study record."""
    write_study(simulate_study(SIM_SEED, 1, 0), tmp_path / "sim")
    out = tmp_path / "eval"
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "findings", str(tmp_path / "sim"), "--out", str(out),
                                 "--resamples", "100", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.splitlines()[0])
    (analysed,) = json.loads((out / "analysis.json").read_text())
    assert analysed["key"] == read_truth(Path(record["path"])).study_uid
    assert not analysed["drafts"] and analysed["cines"]
    again = runner.invoke(app, ["evaluate", "findings", str(tmp_path / "sim"), "--analysis",
                                str(out / "analysis.json"), "--resamples", "100", "--json"])
    assert json.loads(again.stdout.splitlines()[0]) == record

"""`analyze` and the demo: the chain over study folders, bad inputs recorded, outputs written."""

import json
from pathlib import Path

from typer.testing import CliRunner

from angioscribe.analyze import missing_with_unread
from angioscribe.anatomy import SEGMENTS
from angioscribe.cli import app
from angioscribe.demo import main as demo_main


def test_analyze_real_cine_and_dicoms(shared_data, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "analyze",
            str(shared_data / "cine"),
            str(shared_data / "dicom"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    studies = [json.loads(line) for line in result.stdout.splitlines()]
    cines = [cine for study in studies for cine in study["cines"]]
    assert len(cines) == 7
    real = next(c for c in cines if "clinical-lca" in c["source"])
    assert real["view"] == "RAO Caudal"
    assert real["candidates"] and (out / "analysis.json").exists()
    assert len(real["frame_scores"]) == len(real["candidates"])
    lca_study = next(s for s in studies if s["cines"][0] is real)
    chosen = lca_study["keyframes"]["keyframes"]["LCA"][0]
    assert chosen["frame"] >= 13 and chosen["laterality"] == "LCA"
    assert "RCA" in lca_study["keyframes"]["missing"]
    assert Path(lca_study["figure"]).is_file()
    findings = lca_study["findings"]
    assert [(f["side"], f["frame"]) for f in findings] == [("LCA", chosen["frame"])]
    assert set(findings[0]["segments"]) <= set(SEGMENTS)
    assert all(s["segment"] is None or s["segment"] in SEGMENTS for s in findings[0]["stenoses"])
    assert Path(findings[0]["figure"]).is_file()
    # The segments of the real LCA cine's key frame show the LCA too; wherever the segments
    # show the other side than the key-frame classifier, the finding says so.
    assert findings[0]["laterality"] == "LCA" and not findings[0]["side_conflict"]
    for finding in (f for study in studies for f in study["findings"]):
        assert finding["side_conflict"] == (finding["laterality"] not in (None, finding["side"]))
    for cine in cines:
        assert Path(cine["figure"]).is_file() and cine["figure"].endswith(".png")


def test_analyze_records_bad_inputs_and_goes_on(shared_data, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "broken.dcm").write_bytes(b"DICM not really")
    (study / "good.dcm").write_bytes(
        (shared_data / "dicom" / "phantom-xa" / "IM1.dcm").read_bytes()
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(out), "--json"])
    assert result.exit_code == 1, result.output
    saved = json.loads((out / "analysis.json").read_text())
    errors = [error for s in saved for error in s["errors"]]
    assert [e["path"] for e in errors] == [str(study / "broken.dcm")]
    assert sum(len(s["cines"]) for s in saved) == 1


def test_analyze_exits_3_when_nothing_reads(tmp_path):
    (tmp_path / "notes.txt").write_text("not a cine")
    result = CliRunner().invoke(
        app, ["analyze", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 3
    saved = json.loads((tmp_path / "o" / "analysis.json").read_text())
    assert [e["path"] for s in saved for e in s["errors"]] == [str(tmp_path / "notes.txt")]


def test_demo_simulates_a_study_without_shared_data(tmp_path):
    demo_main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "demo")])
    saved = json.loads((tmp_path / "demo" / "analysis.json").read_text())
    assert len(saved) == 1 and len(saved[0]["cines"]) >= 6
    assert all(cine["candidates"] for cine in saved[0]["cines"])


def two_cine_study(shared_data: Path, folder: Path) -> list[Path]:
    """A study folder with copies of two real phantom XA cines."""
    folder.mkdir()
    copies = [folder / name for name in ("IM1.dcm", "IM2.dcm")]
    for copy in copies:
        copy.write_bytes((shared_data / "dicom" / "phantom-xa" / copy.name).read_bytes())
    return copies


def test_analyze_keeps_the_good_cine_when_a_later_one_breaks(shared_data, tmp_path, monkeypatch):
    """A stage that breaks on one cine is that cine's error; the other is analysed, written,
    and the exit code says some failed."""
    import angioscribe.analyze

    good, bad = two_cine_study(shared_data, tmp_path / "study")
    real_analyze = angioscribe.analyze.analyze_cine

    def analyze_or_break(cine, *args, **kwargs):
        if cine.source == str(bad):
            raise RuntimeError("a bug on this cine")
        return real_analyze(cine, *args, **kwargs)

    monkeypatch.setattr(angioscribe.analyze, "analyze_cine", analyze_or_break)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "study"), "--out", str(out)])
    assert result.exit_code == 1, result.output
    saved = json.loads((out / "analysis.json").read_text())
    assert [c["source"] for s in saved for c in s["cines"]] == [str(good)]
    (error,) = [e for s in saved for e in s["errors"]]
    assert error["path"] == str(bad) and "RuntimeError: a bug on this cine" in error["error"]


def test_a_side_missing_next_to_unread_cines_is_unknown_not_absent():
    missing = {"RCA": "no RCA injection found among 12 candidate frames"}
    assert missing_with_unread(missing, 0) == missing
    (reason,) = missing_with_unread(missing, 2).values()
    assert reason.startswith("unknown: 2 cines could not be read")
    assert reason.endswith(missing["RCA"])


def test_analysis_json_holds_what_was_done_when_the_batch_dies(shared_data, tmp_path,
                                                               monkeypatch):
    """Killed on the second cine (here an interrupt), analysis.json already has the first."""
    import angioscribe.analyze
    from angioscribe.analyze import analyze_paths, write_analysis

    good, bad = two_cine_study(shared_data, tmp_path / "study")
    real_analyze = angioscribe.analyze.analyze_cine

    def analyze_or_die(cine, *args, **kwargs):
        if cine.source == str(bad):
            raise KeyboardInterrupt
        return real_analyze(cine, *args, **kwargs)

    monkeypatch.setattr(angioscribe.analyze, "analyze_cine", analyze_or_die)
    out = tmp_path / "out"
    try:
        analyze_paths([tmp_path / "study"], out, checkpoint=lambda so_far: write_analysis(
            so_far, out))
    except KeyboardInterrupt:
        pass
    saved = json.loads((out / "analysis.json").read_text())
    assert [c["source"] for s in saved for c in s["cines"]] == [str(good)]

"""Every drafter scored the same way: `report --corpus` drafts a corpus under its ids,
`evaluate reports --truth CORPUS` scores them, with the named-segment F1 and side errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.evaluate.report_errors import named_segments, segment_agreement
from angioscribe.evaluate.report_tables import DraftScores, naming_table
from angioscribe.report.corpus import CorpusSample, corpus_records, write_corpus
from angioscribe.report.draft import KeyFrameImage
from angioscribe.report.parse import parse_report
from angioscribe.report.records import read_truths
from angioscribe.report.structured import ParsedReport

runner = CliRunner()


@pytest.fixture
def corpus(tmp_path):
    """Three studies in EN and JA: a two-view simulated val study, an ARCADE val frame whose
    clues (the models') hold a false lesion and miss the true one, and a train study."""
    lca, rca = (KeyFrameImage(str(tmp_path / f"{side}.dcm"), 7, side, view)
                for side, view in (("LCA", "RAO Caudal"), ("RCA", "LAO Cranial")))
    frame = KeyFrameImage(str(tmp_path / "12.jpg"), 0, "LCA", None)
    samples = [
        CorpusSample("sim/a", "P-1", "val", [lca, rca],
                     [{"segment": "6", "stenosis_percent": 90}, {"segment": "2",
                                                                "stenosis_percent": 50}],
                     "sim", clinical={"en": "Chest pain.", "ja": "胸痛。"}),
        CorpusSample("arcade/12", "P-2", "val", [frame], [{"segment": "11"}], "arcade",
                     clues=[{"segment": "13", "stenosis_percent": 60}]),
        CorpusSample("sim/b", "P-3", "train", [lca], [{"segment": "7", "stenosis_percent": 75}],
                     "sim"),
    ]
    path = tmp_path / "corpus.jsonl"
    write_corpus(corpus_records(samples), path)
    return path


def _invoke(*args: str) -> list[dict]:
    result = runner.invoke(app, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_corpus_drafts_keep_the_ids_and_are_scored_against_the_corpus(corpus, tmp_path):
    out = tmp_path / "drafts.jsonl"
    drafts = _invoke("report", "--corpus", corpus, "--split", "val", "--out", out)
    assert [(d["id"], d["lang"]) for d in drafts] == [
        ("sim/a", "en"), ("sim/a", "ja"), ("arcade/12", "en"), ("arcade/12", "ja")]
    assert [d["clues"] for d in drafts[2:]] == [[{"segment": "13", "stenosis_percent": 60}]] * 2
    assert drafts[0]["key_frames"][1] == {"path": str(tmp_path / "RCA.dcm"), "frame": 7,
                                          "side": "RCA", "view": "LAO Cranial"}
    scored = tmp_path / "scores"
    rows = _invoke("evaluate", "reports", "--truth", corpus, "--pred", out, "--out", scored,
                   "--n-boot", 20)
    tables = {row["table"]: row for row in rows}
    assert tables["errors"]["n"] == 4
    lines = (scored / "per_draft.jsonl").read_text().splitlines()
    per_draft = [json.loads(line) for line in lines]
    by_case = {(s["id"], d["lang"]): s for s, d in zip(per_draft, drafts, strict=True)}
    # the template writes the sim target itself in each language: scored against its own
    assert [by_case["sim/a", lang]["metrics"]["bleu4"] for lang in ("en", "ja")] == [1.0, 1.0]
    # the ARCADE frame names the models' #13 (false) and not the annotated #11 (missed)
    assert by_case["arcade/12", "en"]["segments"] == {
        "true_positive": 0, "false_positive": 1, "false_negative": 1, "side_error": 0}
    segments = tables["segments"]
    assert (segments["precision"], segments["recall"]) == (4 / 6, 4 / 6)  # 2 + 2 sim, 0 + 0


def test_truth_clues_state_the_annotations_and_only_the_chosen_source(corpus, tmp_path):
    drafts = _invoke("report", "--corpus", corpus, "--source", "arcade", "--clues", "truth",
                     "--lang", "ja")
    assert [(d["id"], d["lang"]) for d in drafts] == [("arcade/12", "ja")]
    assert named_segments(parse_report(drafts[0]["text"], "ja")) == {"11"}


def test_a_corpus_is_truth_with_one_reference_per_language(corpus):
    truths = read_truths(corpus)
    assert sorted(truths) == ["arcade/12", "sim/a", "sim/b"]
    study = truths["sim/a"]
    assert study.reference("en").startswith("Left coronary angiogram (RAO Caudal).")
    assert study.reference("ja").startswith("左冠動脈造影")
    assert (study.report.stated_laterality, study.image, study.group) == ("both", None, "P-1")
    frame = truths["arcade/12"]
    assert (frame.report.stated_laterality, frame.image.name) == ("LCA", "12.jpg")
    assert [f.segment for f in frame.report.findings] == ["11"]


@pytest.mark.parametrize("options", [["--split", "val"], ["--corpus", "c.jsonl", "x.dcm"],
                                     ["--corpus", "c.jsonl", "--clues", "guess"]])
def test_corpus_options_need_a_corpus_and_nothing_else(options):
    result = runner.invoke(app, ["report", *options])
    assert result.exit_code == 2, result.output


def _report(text: str, lang: str = "en") -> ParsedReport:
    return parse_report(text, lang)


def _truth(side: str, findings: list[dict]) -> ParsedReport:
    return ParsedReport.from_dict({"laterality": side, "findings": findings})


def test_named_segments_are_the_stenosed_ones_the_text_asserts():
    text = ("Left coronary angiogram. LAD #6 shows 80% stenosis. LCX #11 shows stenosis. "
            "D1 #9 shows 0% stenosis. No stenosis in #7.")
    assert named_segments(_report(text)) == {"6", "11"}
    assert named_segments(_report("LAD #6に75%の狭窄が確認できます。#7に狭窄なし。", "ja")) == {"6"}


def test_segment_f1_is_pooled_over_drafts_and_sides_are_checked():
    truth = _truth("LCA", [{"segment": "6", "stenosis_percent": 75},
                           {"segment": "11", "stenosis_percent": 90}])
    wrong_neighbour = segment_agreement(
        _report("Left coronary angiogram. LAD #6 shows 80%. LCX #12 shows 90%."), truth)
    assert wrong_neighbour.to_dict() == {"true_positive": 1, "false_positive": 1,
                                         "false_negative": 1, "side_error": 0}
    other_side = segment_agreement(_report("Right coronary angiogram. RCA #2 shows 90%."), truth)
    assert other_side.to_dict() == {"true_positive": 0, "false_positive": 1,
                                    "false_negative": 2, "side_error": 1}
    both = segment_agreement(_report("Left coronary angiogram. Right coronary angiogram. "
                                     "LAD #6 shows 80%. LCX #11 shows 90%."), truth)
    assert (both.true_positive, both.side_error) == (2, True)
    drafts = [DraftScores("m", str(i), str(i), segments=agreement.to_dict())
              for i, agreement in enumerate([wrong_neighbour, other_side, both])]
    [row] = naming_table(drafts, n_boot=50)
    # pooled: 3 right of 5 named, 3 of 6 true found
    assert (row["precision"], row["recall"]) == (3 / 5, 3 / 6)
    assert row["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 3))
    assert (row["side_errors"], row["side_rate"]) == (2, 2 / 3)
    assert row["f1_ci"][0] <= row["f1"] <= row["f1_ci"][1]
    assert not np.isnan(row["precision_ci"]).any()


def test_model_clues_come_from_one_chain_run_per_study_for_both_languages(corpus, monkeypatch):
    """With clues from the models, each id's images go through the image chain once; its key
    frames and findings serve both languages, and a study the chain cannot read is an error
    of each of its records while the batch goes on."""
    from types import SimpleNamespace

    from angioscribe.analyze import StudyAnalysis
    from angioscribe.report import drafting
    from angioscribe.report.corpus import read_corpus
    from angioscribe.report.template import TemplateDrafter

    analysed = []

    def chain(paths):
        analysed.append([path.name for path in paths])
        if paths[0].name == "12.jpg":
            return [StudyAnalysis("12.jpg", errors=[{"path": "12.jpg", "error": "unreadable"}])]
        cine = SimpleNamespace(source=str(paths[0]), view="RAO Caudal")
        return [StudyAnalysis("uid", cines=[cine],
                              keyframes={"keyframes": {"LCA": [{"path": str(paths[0]),
                                                                "frame": 3}]}},
                              study_findings=[{"segment": "7", "stenosis_percent": 80}])]

    monkeypatch.setattr(drafting, "image_chain", lambda: chain)
    records = [r for r in read_corpus(corpus) if r.split == "val"]
    results = list(drafting.draft_corpus(records, dict.fromkeys(("en", "ja"), TemplateDrafter()),
                                         "models", corpus))
    assert analysed == [["LCA.dcm", "RCA.dcm"], ["12.jpg"]]
    drafts = [draft for _, draft in results[:2]]
    assert [(d.case_id, d.lang, d.path) for d in drafts] == [("sim/a", "en", str(corpus)),
                                                             ("sim/a", "ja", str(corpus))]
    assert all(d.clues == [{"segment": "7", "stenosis_percent": 80}] for d in drafts)
    assert drafts[0].key_frames == [{"path": records[0].images[0].path, "frame": 3,
                                     "side": "LCA", "view": "RAO Caudal"}]
    assert [(record.id, error.problem) for record, error in results[2:]] == [
        ("arcade/12", "unreadable")] * 2

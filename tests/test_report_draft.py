"""The drafter interface and the `findings-template` drafter: texts that parse back to their
findings and plan, in English and Japanese, and the registry that names drafters."""

from __future__ import annotations

import random

import pytest

from angioscribe.anatomy import SEGMENTS
from angioscribe.errors import InputError
from angioscribe.evaluate.report_errors import report_errors
from angioscribe.report import parse_report
from angioscribe.report.draft import DraftRequest, KeyFrameImage
from angioscribe.report.drafters import create_drafter, list_drafters
from angioscribe.report.structured import ParsedReport
from angioscribe.report.template import TemplateDrafter, stated_percent, treatment_plan

LANGUAGES = ("en", "ja")
VIEWS = (None, "RAO caudal", "AP cranial", "LAO")


def _random_findings(rng: random.Random) -> list[dict]:
    """0-5 findings as the image side gives them: a percent, a grade word, an occlusion flag,
    or only the segment; sometimes two entries for one segment (two views)."""
    findings = []
    for number in rng.sample(list(SEGMENTS), rng.randint(0, 5)):
        finding: dict = {"segment": number, "confidence": rng.random()}
        kind = rng.random()
        if kind < 0.5:
            finding["stenosis_percent"] = rng.choice([0, 4, 20, 45, 50, 65, 70, 75, 90, 99, 100])
        elif kind < 0.7:
            finding["grade"] = rng.choice(["mild", "moderate", "severe", "occluded"])
        elif kind < 0.8:
            finding["cto"] = True
        finding["thrombus"] = rng.random() < 0.2
        finding["calcification"] = rng.choice(["none", "mild", "severe", True, None])
        findings.append(finding)
        if rng.random() < 0.2:
            findings.append({"segment": number, "stenosis_percent": rng.choice([30, 80])})
    return findings


def _random_frames(rng: random.Random) -> list[KeyFrameImage]:
    return [KeyFrameImage(f"cine{i}.dcm", rng.randint(0, 40), rng.choice(["LCA", "RCA"]),
                          rng.choice(VIEWS)) for i in range(rng.randint(0, 3))]


def test_template_drafts_parse_back_to_their_findings_and_plan():
    """Over many random finding sets the parser reads each draft back to the segments, the
    percent each sentence states, the plan, and the sides of the angiograms; scored against its
    own clues as truth, a draft has no error of any category."""
    rng = random.Random(23)
    drafter = create_drafter("findings-template", "en")
    drafts = 0
    for _ in range(300):
        findings, frames = _random_findings(rng), _random_frames(rng)
        for lang in LANGUAGES:
            draft = drafter.draft(DraftRequest("study", lang, frames, findings))
            parsed = parse_report(draft.text, lang)
            stated = {f["segment"]: stated_percent(f) for f in draft.clues}
            read = {f.segment: f.stenosis_percent for f in parsed.findings
                    if f.segment and not f.negated}
            plan = treatment_plan(draft.clues).recommendation
            assert read == stated, draft.text
            assert parsed.recommendations == [plan], draft.text
            sides = {frame.side for frame in frames} | {SEGMENTS[n].laterality for n in stated}
            assert parsed.stated_laterality == (
                "both" if len(sides) == 2 else next(iter(sides), None)), draft.text
            truth = ParsedReport.from_dict({
                "findings": [{**f, "stenosis_percent": stated[f["segment"]]} for f in draft.clues],
                "recommendation": plan,
            })
            assert report_errors(parsed, truth).reasons == [], draft.text
            drafts += 1
    assert drafts == 600


def test_template_writes_the_papers_target_sentence():
    request = DraftRequest("case-17", "en", [KeyFrameImage("a.dcm", 12, "LCA", None)],
                           [{"segment": "11", "stenosis_percent": 75}])
    english = TemplateDrafter().draft(request).text
    assert english == ("Left coronary angiogram. LCX #11 shows 75% stenosis. Consider PCI in "
                       "context of other angiographic findings and comorbidities.")
    request.lang = "ja"
    japanese = TemplateDrafter().draft(request).text
    assert japanese.startswith("左冠動脈造影。LCX #11に75%の狭窄が確認できます。")


def test_a_lesion_qca_reads_under_10_percent_is_written_as_luminal_irregularities():
    """The stenosis model saw a lesion, QCA measured almost no narrowing: no "0% stenosis"."""
    findings = [{"segment": "12", "stenosis_percent": 3.6},
                {"segment": "6", "stenosis_percent": 12}]
    english = TemplateDrafter().draft(DraftRequest("s", "en", [], findings)).text
    japanese = TemplateDrafter().draft(DraftRequest("s", "ja", [], findings)).text
    assert "RI #12 shows luminal irregularities." in english
    assert "LAD #6 shows 12% stenosis." in english
    assert "RI #12に壁不整を認めます。" in japanese
    assert "0%" not in english.replace("100%", "") and "4%" not in english


def test_one_clue_per_segment_the_most_severe_in_syntax_order():
    findings = [{"segment": "13", "stenosis_percent": 50}, {"segment": "6", "grade": "mild"},
                {"segment": "13", "stenosis_percent": 90}, {"segment": None, "confidence": 0.9}]
    draft = TemplateDrafter().draft(DraftRequest("s", "en", [], findings))
    assert [(c["segment"], c.get("stenosis_percent")) for c in draft.clues] == [
        ("6", None), ("13", 90)]
    assert draft.text.index("#6") < draft.text.index("#13")


def test_no_findings_say_no_significant_stenosis_and_medical_therapy():
    for lang in LANGUAGES:
        draft = TemplateDrafter().draft(DraftRequest("s", lang, [], []))
        parsed = parse_report(draft.text, lang)
        assert parsed.recommendations == ["medical"]
        assert [f.negated for f in parsed.findings] == [True]


def test_lesions_of_unknown_severity_ask_for_assessment_not_for_nothing():
    plan = treatment_plan([{"segment": "7"}])
    assert plan.recommendation == "further_testing"
    assert treatment_plan([{"segment": "7"}, {"segment": "11", "grade": "severe"}]) \
        .recommendation == "pci"
    assert treatment_plan([{"segment": "7", "stenosis_percent": 40}]).recommendation == "medical"


def test_draft_record_carries_clues_and_frames_without_pixels():
    import numpy as np

    frame = KeyFrameImage("study/cine1.dcm", 7, "RCA", "LAO", pixels=np.zeros((4, 4), np.uint8))
    draft = TemplateDrafter().draft(DraftRequest("study", "ja", [frame],
                                                 [{"segment": "2", "stenosis_percent": 90}]))
    record = draft.to_record()
    assert record["key_frames"] == [
        {"path": "study/cine1.dcm", "frame": 7, "side": "RCA", "view": "LAO"}]
    assert record["clues"] == [{"segment": "2", "stenosis_percent": 90}]
    assert (record["id"], record["study"], record["lang"], record["model"]) == (
        "study", "study", "ja", "findings-template")


def test_drafters_are_registry_entries():
    assert "findings-template" in list_drafters()
    assert isinstance(create_drafter("findings-template", "ja"), TemplateDrafter)
    with pytest.raises(InputError):
        create_drafter("no-such-drafter", "en")


# --- the `report` command ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_run(shared_data, tmp_path_factory):
    """`angioscribe report` on one real ARCADE frame and one missing input (models run once)."""
    from typer.testing import CliRunner

    from angioscribe.cli import app

    folder = tmp_path_factory.mktemp("report")
    image = shared_data / "arcade" / "stenosis" / "val" / "images" / "1.jpg"
    out = folder / "drafts.jsonl"
    result = CliRunner().invoke(app, ["report", str(image), str(folder / "missing.dcm"),
                                      "--out", str(out), "--json"])
    return result, image, out, folder


def test_report_writes_one_record_per_language_and_an_error_record(report_run):
    import json

    result, image, out, folder = report_run
    assert result.exit_code == 1, result.output  # one of two inputs failed
    records = [json.loads(line) for line in result.stdout.splitlines()]
    drafts = [r for r in records if "error" not in r]
    assert [(r["id"], r["lang"], r["model"]) for r in drafts] == [
        ("1.jpg", "en", "findings-template"), ("1.jpg", "ja", "findings-template")]
    assert all(r["path"] == r["study"] == str(image) for r in drafts)
    assert drafts[0]["key_frames"] == [{"path": str(image), "frame": 0, "side": "RCA",
                                        "view": None}]
    for draft in drafts:  # the text states exactly the segments of its clues
        parsed = parse_report(draft["text"], draft["lang"])
        assert {f.segment for f in parsed.findings if f.segment} == {
            c["segment"] for c in draft["clues"]}
        assert parsed.stated_laterality == "RCA"
    assert records[-1] == {"path": str(folder / "missing.dcm"), "error": "no such file or folder"}
    assert [json.loads(line) for line in out.read_text().splitlines()] == drafts


def test_report_drafts_are_pred_input_for_evaluation_and_review(report_run):
    import json

    from typer.testing import CliRunner

    from angioscribe.cli import app

    _, _, out, folder = report_run
    truth = folder / "truth.jsonl"
    truth.write_text(json.dumps({"id": "1.jpg", "laterality": "RCA", "findings": [
        {"segment": "1", "stenosis_percent": 75}], "text": "RCA #1 shows 75% stenosis."}) + "\n")
    runner = CliRunner()
    evaluated = runner.invoke(app, ["evaluate", "reports", "--pred", str(out), "--truth",
                                    str(truth), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    errors = json.loads(evaluated.stdout.splitlines()[0])
    assert (errors["model"], errors["n"], errors["laterality_drafts"]) == (
        "findings-template", 2, 0)
    exported = runner.invoke(app, ["review", "export", "--pred", str(out), "--truth", str(truth),
                                   "--out", str(folder / "review")])
    assert exported.exit_code == 0, exported.output
    assert len(json.loads((folder / "review" / "review_key.json").read_text())) == 2


@pytest.mark.parametrize("options", [["--lang", "fr"], ["--model", "xx=findings-template"],
                                     ["--model", "en=findings-template", "--lang", "both"],
                                     ["--model", "no-such-drafter"]])
def test_report_usage_errors_exit_2_before_any_model_runs(options, tmp_path):
    from typer.testing import CliRunner

    from angioscribe.cli import app

    result = CliRunner().invoke(app, ["report", str(tmp_path), *options])
    assert result.exit_code == 2, result.output


def test_drafters_that_read_images_get_the_key_frames_pixels(tmp_path):
    """A drafter that looks at images is handed each key frame's pixels from its source; the
    draft is stamped with the input and the study key."""
    import numpy as np
    from PIL import Image

    from angioscribe.report.drafting import write_draft
    from angioscribe.report.records import Draft

    image = np.tile(np.arange(64, dtype=np.uint8), (48, 1))
    Image.fromarray(image).save(tmp_path / "frame.png")

    class Looking:
        name = "looking"

        def draft(self, request: DraftRequest) -> Draft:
            seen = [frame.pixels.shape for frame in request.key_frames]
            return Draft(request.study, self.name, f"saw {seen}", request.lang)

    request = DraftRequest("frame.png", "en",
                           [KeyFrameImage(str(tmp_path / "frame.png"), 0, "LCA", None)], [])
    draft = write_draft(Looking(), request, "given/path.png", "study-key")
    assert draft.text == "saw [(48, 64)]"
    assert np.array_equal(request.key_frames[0].pixels, image)
    assert (draft.path, draft.study, draft.case_id) == ("given/path.png", "study-key", "frame.png")


def test_an_analysed_study_becomes_a_request_with_the_segments_side():
    """Key frames from the chain's choice, with their cine's view; a frame whose segments show
    the other side than the key-frame classifier takes the segments' side, as its lesions do."""
    from angioscribe.analyze import CineAnalysis, StudyAnalysis
    from angioscribe.report.drafting import draft_request

    cine = CineAnalysis("s/cine1.dcm", {}, "LAO Cranial", [], [])
    study = StudyAnalysis(
        "s", cines=[cine],
        keyframes={"keyframes": {"RCA": [{"path": "s/cine1.dcm", "frame": 9}]}, "missing": {}},
        findings=[{"path": "s/cine1.dcm", "frame": 9, "side": "RCA", "laterality": "LCA",
                   "stenoses": [{"segment": "13", "confidence": 0.8}, {"segment": None}]}],
        study_findings=[{"segment": "13", "confidence": 0.8,
                         "views": [{"path": "s/cine1.dcm", "frame": 9}]}],
    )
    request = draft_request(study, "en")
    assert [(f.path, f.frame, f.side, f.view) for f in request.key_frames] == [
        ("s/cine1.dcm", 9, "LCA", "LAO Cranial")]
    assert request.findings == study.study_findings
    text = TemplateDrafter().draft(request).text
    assert parse_report(text, "en").stated_laterality == "LCA", text
    study.keyframes = {"keyframes": {}, "missing": {"LCA": "no LCA injection found"}}
    with pytest.raises(InputError, match="no key frame to draft from"):
        draft_request(study, "en")


def test_the_plan_counts_a_segment_seen_twice_with_its_worst_value():
    twice = [{"segment": "11", "stenosis_percent": 90}, {"segment": "11", "stenosis_percent": 30}]
    assert treatment_plan(twice).recommendation == "pci"
    assert treatment_plan(twice[::-1]).recommendation == "pci"

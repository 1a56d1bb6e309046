"""`analyze` and the demo: the chain over study folders, bad inputs recorded, outputs written."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from angioscribe.analyze import Segmenters, keyframe_findings
from angioscribe.anatomy import SEGMENTS
from angioscribe.cli import app
from angioscribe.cli.analyze import syntax_summary
from angioscribe.demo import main as demo_main
from angioscribe.findings import StenosisFinding, frame_findings, segment_frame, study_findings
from angioscribe.keyframes.select import missing_with_unread
from angioscribe.qca import grade
from angioscribe.qca.simulated import view_lesions
from angioscribe.regions import Region, mask_polygon
from angioscribe.sim.study import simulate_study


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
    assert (out / lca_study["figure"]).is_file()
    findings = lca_study["findings"]
    assert [(f["side"], f["frame"]) for f in findings] == [("LCA", chosen["frame"])]
    assert set(findings[0]["segments"]) <= set(SEGMENTS)
    assert all(s["segment"] is None or s["segment"] in SEGMENTS for s in findings[0]["stenoses"])
    assert (out / findings[0]["figure"]).is_file() and findings[0]["key_frame"]
    # The segments of the real LCA cine's key frame show the LCA too; wherever the segments
    # show the other side than the key-frame classifier, the finding says so.
    assert findings[0]["laterality"] == "LCA" and not findings[0]["side_conflict"]
    for finding in (f for study in studies for f in study["findings"]):
        assert finding["side_conflict"] == (finding["laterality"] not in (None, finding["side"]))
    for cine in cines:
        assert (out / cine["figure"]).is_file() and cine["figure"].endswith(".png")
    # One finding per segment with a lesion, measured in the view the model is surest of.
    lesions = [lesion for finding in findings for lesion in finding["stenoses"]]
    named = {lesion["segment"] for lesion in lesions} - {None}
    assert [entry["segment"] for entry in lca_study["study_findings"]] == sorted(
        named, key=list(SEGMENTS).index)
    for entry in lca_study["study_findings"]:
        assert entry["confidence"] == max(view["confidence"] for view in entry["views"])
    # Thrombus and calcification are not assessed: null with the flag saying so, never false.
    for record in [*lesions, *lca_study["study_findings"]]:
        assert record["thrombus"] is None and record["thrombus_assessed"] is False
        assert record["calcification"] is None and record["calcification_assessed"] is False
    # Dominance from the frames read (one LCA cine: no right injection to tell), and the
    # SYNTAX score of the study's findings under it, with what it could not assess.
    dominance, score = lca_study["dominance"], lca_study["syntax_score"]
    assert dominance["value"] in ("left", "unknown")
    assert (dominance["value"] == "left") == bool(dominance["evidence"])
    assert score["dominance_assumed"] == (dominance["value"] == "unknown")
    assert score["value"] == sum(lesion["score"] for lesion in score["lesions"])
    scored = {lesion["segment"] for lesion in score["lesions"]}
    excluded = {entry["segment"] for entry in score["excluded"]}
    assert scored | excluded == {entry["segment"] for entry in lca_study["study_findings"]}
    assert "thrombus" in score["not_assessed"] or not scored
    assert syntax_summary(score).startswith(f"{score['value']:g}")
    # Drafts in both languages, beside analysis.json, from the study's findings.
    drafts = lca_study["drafts"]
    assert set(drafts) == {"en", "ja"}
    for draft in drafts.values():
        assert (out / draft["file"]).read_text(encoding="utf-8").strip() == draft["text"]
    assert "Left coronary angiogram" in drafts["en"]["text"]
    # The WG04 cerebral angiogram is no coronary angiogram: its frame is refused with its
    # score, and gives no key frame, no segments, no lesions and no draft describing it.
    cerebral = [c for c in cines if "wg04" in c["source"]]
    assert cerebral and all(c["out_of_scope"] for c in cerebral)
    for verdict in (v for c in cerebral for v in c["out_of_scope"].values()):
        assert not verdict["in_scope"] and verdict["score"] > verdict["threshold"]
    for study in (s for s in studies if all("wg04" in c["source"] for c in s["cines"])):
        assert not study["findings"] and not study["drafts"]
        reasons = study["keyframes"]["missing"].values()
        assert all("not a coronary angiogram" in why for why in reasons)
    assert not real["out_of_scope"].get(chosen["frame"])
    models = lca_study["provenance"]["models"]
    assert {model["name"] for model in models.values()} == {
        "keyframe-effnetl0", "syntax-seg", "stenosis-seg"}
    assert all(len(model["sha256"]) == 12 for model in models.values())


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
    # Every cine with a fully opacified frame the scope guard accepts is read, not only one
    # key frame per side.
    read = {finding["path"] for finding in saved[0]["findings"]}
    accepted = {cine["source"] for cine in saved[0]["cines"]
                if any(score["keyframe"] == "better" and str(score["frame"]) not in
                       cine["out_of_scope"] for score in cine["frame_scores"])}
    assert read == accepted and len(read) >= 2
    assert sum(f["key_frame"] for f in saved[0]["findings"]) <= 2
    assert set(saved[0]["drafts"]) == {"en", "ja"}


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
    """Interrupted on the second cine, analysis.json has the first; checkpoints come at most
    every CHECKPOINT_SECONDS (here never again after the first) plus one at the end, so a
    long batch does not rewrite the file after every cine."""
    import angioscribe.analyze
    from angioscribe.analyze import analyze_paths, write_analysis

    good, bad = two_cine_study(shared_data, tmp_path / "study")
    real_analyze = angioscribe.analyze.analyze_cine

    def analyze_or_die(cine, *args, **kwargs):
        if cine.source == str(bad):
            raise KeyboardInterrupt
        return real_analyze(cine, *args, **kwargs)

    monkeypatch.setattr(angioscribe.analyze, "analyze_cine", analyze_or_die)
    monkeypatch.setattr(angioscribe.analyze, "CHECKPOINT_SECONDS", 1e9)
    out, written = tmp_path / "out", []

    def checkpoint(so_far):
        written.append(len(so_far[0].cines))
        write_analysis(so_far, out)

    with pytest.raises(KeyboardInterrupt):
        analyze_paths([tmp_path / "study"], out, checkpoint=checkpoint)
    saved = json.loads((out / "analysis.json").read_text())
    assert [c["source"] for s in saved for c in s["cines"]] == [str(good)]
    assert written == [1, 1]  # after the first cine, and when interrupted


@pytest.fixture(scope="module")
def segmenters() -> Segmenters:
    return Segmenters.load()


def test_key_frame_lesions_are_measured_on_a_real_arcade_frame(shared_data, segmenters,
                                                               tmp_path):
    """Every lesion the models find carries its QCA values beside the model's confidence; mm
    values follow the given scale and are null without one."""
    image = cv2.imread(str(shared_data / "arcade" / "stenosis" / "val" / "images" / "1.jpg"),
                       cv2.IMREAD_GRAYSCALE)
    scaled = keyframe_findings(image, segmenters, tmp_path / "mm.png", 0.3, "ARCADE val 1")
    unscaled = keyframe_findings(image, segmenters, tmp_path / "px.png")
    assert scaled["stenoses"] and Path(scaled["figure"]).is_file()
    for lesion, same in zip(scaled["stenoses"], unscaled["stenoses"], strict=True):
        assert 0 < lesion["confidence"] <= 1
        assert 0 <= lesion["stenosis_percent"] <= 100
        assert lesion["grade"] == grade(lesion["stenosis_percent"], lesion["cto"])
        assert lesion["mld_mm"] == pytest.approx(0.3 * lesion["mld_px"], abs=0.01)
        assert lesion["reference_mm"] == pytest.approx(0.3 * lesion["reference_px"], abs=0.01)
        assert same["stenosis_percent"] == lesion["stenosis_percent"]
        assert same["mld_mm"] is None and same["reference_mm"] is None
        assert same["length_mm"] is None


class OutlinedLesion:
    """A stenosis model that outlines one known region (the simulator's truth)."""

    def __init__(self, outline: np.ndarray) -> None:
        self.region = Region(26, mask_polygon(outline.astype(np.uint8)), 1.0,
                             float(outline.sum()))

    def regions(self, frame: np.ndarray) -> list[Region]:
        return [self.region]


def test_clear_simulated_lesions_are_measured_near_their_true_stenosis(segmenters):
    """On the simulated demo study's clear RCA lesion views (no crossing, not foreshortened),
    the SYNTAX model's vessel mask gives QCA within 10 points of the truth, in mm too."""
    study = simulate_study(seed=0)
    (view,) = [v for v in study.views if v.laterality == "RCA"][:1]
    clear = [lesion for lesion in view_lesions(study, view)
             if lesion.crossed < 0.1 and lesion.in_plane >= 0.7]
    assert clear
    for truth in clear:
        _, findings = segment_frame(truth.frame, segmenters.syntax,
                                    OutlinedLesion(truth.outline), truth.mm_per_px)
        (lesion,) = findings.stenoses
        measured = lesion.measurement
        assert lesion.segment == truth.lesion.segment
        assert abs(measured["stenosis_percent"] - truth.lesion.stenosis_percent) <= 10
        assert measured["mld_mm"] == pytest.approx(truth.mm_per_px * measured["mld_px"],
                                                   abs=0.01)


def lesion_record(segment: str, percent: float | None, confidence: float) -> dict:
    """A lesion as analysis.json lists it, with only the values consolidation reads."""
    lesion = StenosisFinding(segment, "LCA", confidence, 1.0, (0, 0, 1, 1), [[0, 0]])
    if percent is not None:
        lesion.measurement |= {"stenosis_percent": percent, "grade": grade(percent), "cto": False}
    return lesion.to_dict()


def test_a_segment_takes_the_most_confident_measured_view_not_the_worst():
    frames = [
        {"path": "a.dcm", "frame": 3, "view": "RAO Cranial",
         "stenoses": [lesion_record("6", 85.0, 0.7), lesion_record("6", 40.0, 0.6)]},
        {"path": "b.dcm", "frame": 9, "view": "LAO Cranial",
         "stenoses": [lesion_record("6", None, 0.95), lesion_record("6", 62.0, 0.9),
                      lesion_record("12b", None, 0.5)]},
    ]
    six, twelve = study_findings(frames)
    assert six["segment"] == "6" and six["stenosis_percent"] == 62.0
    assert six["grade"] == "moderate" and six["confidence"] == 0.9
    assert six["measured_in"] == {"path": "b.dcm", "frame": 9, "view": "LAO Cranial"}
    assert [(v["path"], v["stenosis_percent"]) for v in six["views"]] == [
        ("a.dcm", 85.0), ("b.dcm", 62.0)]
    assert twelve["segment"] == "12b" and twelve["stenosis_percent"] is None
    assert (six["views_showing_segment"], six["view_agreement"]) == (2, 1.0)


def test_view_agreement_counts_the_views_that_show_the_segment_without_its_lesion():
    frames = [
        {"path": "a.dcm", "frame": 3, "view": "RAO Cranial", "segments": ["5", "6", "7"],
         "stenoses": [lesion_record("6", 80.0, 0.9)]},
        {"path": "b.dcm", "frame": 9, "view": "LAO Cranial", "segments": ["6", "7"],
         "stenoses": []},
        {"path": "c.dcm", "frame": 4, "view": "AP Caudal", "segments": ["6", "11"],
         "stenoses": [lesion_record("11", 55.0, 0.8)]},
        {"path": "d.dcm", "frame": 2, "view": "LAO Straight", "segments": ["1", "2"],
         "stenoses": []},
    ]
    six, eleven = study_findings(frames)
    assert (six["views_showing_segment"], six["view_agreement"]) == (3, pytest.approx(0.333))
    assert (eleven["views_showing_segment"], eleven["view_agreement"]) == (1, 1.0)


def test_without_segments_a_lesion_is_named_on_the_classifiers_side():
    """No segment kept by the rules: the lesion is named on the given side's segments, even
    where the other coronary's segment has more probability there."""
    probabilities = np.zeros((26, 40, 40), dtype=np.float32)
    probabilities[0] = 0.2
    probabilities[2] = 0.5  # ARCADE id 2: #2 mid RCA
    probabilities[6] = 0.3  # ARCADE id 6: #6 proximal LAD
    lesion = Region(26, np.array([[10, 10], [20, 10], [20, 20], [10, 20]], float), 0.9, 100.0)
    unknown = frame_findings([], [lesion], probabilities, range(26))
    left = frame_findings([], [lesion], probabilities, range(26), side="LCA")
    assert unknown.stenoses[0].segment == "2" and unknown.laterality is None
    assert left.stenoses[0].segment == "6" and left.laterality is None


def test_a_draft_never_says_none_for_what_was_not_assessed():
    """A lesion whose thrombus and calcification nobody assessed is drafted without either;
    assessed ones are written."""
    from angioscribe.report.template import finding_sentence

    lesion = lesion_record("7", 75.0, 0.9)
    assert lesion["thrombus"] is None and not lesion["thrombus_assessed"]
    (entry,) = study_findings([{"path": "a.dcm", "frame": 1, "view": None, "side": "LCA",
                                "stenoses": [lesion]}])
    assert entry["thrombus"] is None and entry["calcification_assessed"] is False
    for language in ("en", "ja"):
        sentence = finding_sentence(entry, language)
        assert not any(word in sentence for word in ("thromb", "calcif", "血栓", "石灰化"))
    assessed = {**entry, "thrombus": True, "thrombus_assessed": True,
                "calcification": "severe", "calcification_assessed": True}
    assert "thrombus and severe calcification" in finding_sentence(assessed, "en")


def test_a_lesion_record_reads_back_with_its_assessment_and_neighbours():
    """analysis.json's lesion record gives back the same lesion: thrombus and calcification as
    assessed (or not), and the segments around it."""
    lesion = StenosisFinding("6", "LCA", 0.8, 0.9, (0, 0, 1, 1), [[0, 0]],
                             adjacent_segments=["6", "7", "9"])
    lesion.assessment |= {"calcification": "severe", "calcification_assessed": True}
    again = StenosisFinding.from_dict(json.loads(json.dumps(lesion.to_dict())))
    assert again == lesion
    assert StenosisFinding.from_dict({**lesion.to_dict(), "thrombus": None}).assessment[
        "thrombus_assessed"] is False


def test_figures_of_studies_with_the_same_file_names_do_not_replace_each_other(tmp_path):
    """A simulated dataset repeats `dicom/01_LCA.dcm` in every study: figure names must differ
    between studies and stay the same for one source."""
    from angioscribe.analyze import _figure_stem

    first, second = (tmp_path / study / "dicom" / "01_LCA.dcm" for study in ("SIM1", "SIM2"))
    assert _figure_stem(first) != _figure_stem(second)
    assert _figure_stem(first) == _figure_stem(str(first))
    assert _figure_stem(first).startswith("dicom_01_LCA.dcm_")


def test_analyze_adds_the_video_models_study_predictions(shared_data, tmp_path):
    """With --video-model, each study carries the per-segment records `predict` writes, beside
    the frame findings; a model that cannot be loaded stops the run before any input."""
    import torch

    from angioscribe.anatomy import DEEPCORO_SEGMENTS
    from angioscribe.video.config import VideoConfig
    from angioscribe.video.study_model import VideoStudyModel
    from angioscribe.video.zoo import save_video_artifact, video_entry
    from video_studies import TINY

    torch.manual_seed(0)
    config = VideoConfig.from_dict(TINY)
    artifact = save_video_artifact(VideoStudyModel(config, pretrained=False),
                                   video_entry("video-tiny", config), tmp_path / "tiny.safetensors")
    study = tmp_path / "study"
    study.mkdir()
    (study / "IM1.dcm").write_bytes((shared_data / "dicom" / "phantom-xa" / "IM1.dcm").read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(study), "--out", str(out), "--video-model",
                                      str(artifact)])
    assert result.exit_code == 0, result.output
    (saved,) = json.loads((out / "analysis.json").read_text())
    predictions = saved["video_predictions"]
    assert [p["segment"] for p in predictions] == list(DEEPCORO_SEGMENTS)
    assert all(0 <= p["stenosis_percent"] <= 100 and 0 <= p["p_cto"] <= 1 for p in predictions)
    assert saved["provenance"]["models"]["video"]["name"] == "video-tiny"
    assert saved["cines"] and "findings" in saved
    missing = CliRunner().invoke(app, ["analyze", str(study), "--out", str(tmp_path / "o2"),
                                       "--video-model", str(tmp_path / "absent.safetensors")])
    assert missing.exit_code == 3 and "absent.safetensors" in missing.output

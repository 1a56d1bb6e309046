"""The study simulator: geometry, lesion truth, rendering, files, reports and determinism.

Whole studies are expensive (a second or more each), so the module renders two and reuses
them: seed 16 through the CLI (a CTO of the proximal LCX with collaterals, a 75 % D2 lesion)
and seed 20 through the library (three lesions, one with thrombus, calcification).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from angioscribe.anatomy import SEGMENTS, view_from_angles
from angioscribe.cli import app
from angioscribe.io import read_cine
from angioscribe.report.parse import parse_report
from angioscribe.sim.anatomy3d import SEGMENT_CODES, build_anatomy
from angioscribe.sim.background import render_background
from angioscribe.sim.contrast import Injection
from angioscribe.sim.keyframes import keyframe_label
from angioscribe.sim.lesions import Lesion, apply_lesions, lesion_centre
from angioscribe.sim.motion import Breathing, sample_cardiac_motion
from angioscribe.sim.projection import CArm
from angioscribe.sim.render import Timeline, noise_field, render_cine
from angioscribe.sim.reports import treatment_plan
from angioscribe.sim.scene import build_scene
from angioscribe.sim.study import simulate_study
from angioscribe.sim.writers import dataset_seeds, write_study

CLI_SEED, LIBRARY_SEED = 16, 20


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli")
    result = CliRunner().invoke(app, ["sim", "study", "--out", str(out), "--seed",
                                      str(CLI_SEED), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    return Path(record["folder"])


@pytest.fixture(scope="module")
def library_study():
    return simulate_study(LIBRARY_SEED)


def truth_of(folder: Path) -> dict:
    return json.loads((folder / "truth.json").read_text(encoding="utf-8"))


# --- geometry -------------------------------------------------------------------------------

def test_c_arm_axes_are_orthonormal_and_ap_shows_patient_left_on_the_right() -> None:
    beam, right, down = CArm(0, 0).axes()
    frame = np.stack([beam, right, down])
    assert np.allclose(frame @ frame.T, np.eye(3))
    cols, rows, _ = CArm(0, 0).project(np.array([[50.0, 0, 0], [0, 0, 50.0]]))
    assert cols[0] > 255.5 and rows[1] < 255.5  # left -> image right, head -> image top


def test_magnification_follows_sid_over_sod() -> None:
    arm = CArm(0, 0, sid_mm=1000, sod_mm=700)
    _, _, scale = arm.project(np.array([[0.0, 0, 0], [0, 100.0, 0]]))  # +y: toward the source
    assert scale[0] == pytest.approx(1000 / 700)
    assert scale[1] > scale[0]  # nearer the source, larger on the detector


def test_rao_and_lao_swing_anterior_and_posterior_structures_opposite_ways() -> None:
    anterior, posterior = np.array([[0.0, -60, 0]]), np.array([[0.0, 60, 0]])
    for primary, anterior_right in ((-30, True), (40, False)):
        arm = CArm(primary, 0)
        assert (arm.project(anterior)[0][0] > arm.project(posterior)[0][0]) == anterior_right
    # The spine (posterior) sits on the image left in RAO and on the right in LAO.
    assert CArm(-30, 0).project(posterior)[0][0] < 255.5 < CArm(40, 0).project(posterior)[0][0]


@pytest.mark.parametrize("seed", range(5))
def test_projected_tree_moves_as_in_the_cath_lab(seed: int) -> None:
    anatomy = build_anatomy(np.random.default_rng(seed))
    lad, lcx = anatomy.vessel("LAD").points, anatomy.vessel("LCX").points

    def offset(primary: float, secondary: float) -> tuple[float, float]:
        arm = CArm(primary, secondary)
        (lad_cols, lad_rows, _), (lcx_cols, lcx_rows, _) = arm.project(lad), arm.project(lcx)
        return lad_cols.mean() - lcx_cols.mean(), lad_rows.mean() - lcx_rows.mean()

    assert offset(-30, 0)[0] > 0 > offset(40, 0)[0]  # RAO: LAD right of LCX; LAO: left of it
    assert offset(0, 30)[1] > offset(0, -30)[1]  # cranial lifts the posterior LCX above LAD


def test_standard_views_land_in_their_deepcoro_classes(library_study) -> None:
    classes = [view.view for view in library_study.views]
    assert "Other" not in classes and None not in classes
    assert classes[:4] == ["RAO Caudal", "RAO Cranial", "LAO Cranial", "LAO Caudal"]


# --- anatomy and lesions --------------------------------------------------------------------

@pytest.mark.parametrize("dominance", ["right", "left", "co"])
def test_anatomy_numbers_and_calibres(dominance: str) -> None:
    anatomy = build_anatomy(np.random.default_rng(3), dominance=dominance)
    assert set(anatomy.segments) <= set(SEGMENTS)
    assert {"1", "2", "3", "5", "6", "7", "8", "11", "13"} <= set(anatomy.segments)
    assert ("15" in anatomy.segments) == (dominance == "left")
    assert ("4" in anatomy.segments) == (dominance != "left")
    left_main = anatomy.vessel("LM").radius_mm * 2
    assert 3.5 < left_main.mean() < 5.5
    lad = anatomy.vessel("LAD").radius_mm * 2
    assert 2.8 < lad[0] < 4.2 and 1.0 < lad[-1] < 2.2 and np.all(np.diff(lad) <= 1e-9)
    for vessel in anatomy.vessels:  # every side branch leaves a larger parent
        if vessel.origin:
            parent, at = vessel.origin
            assert vessel.radius_mm[0] <= anatomy.vessel(parent).radius_mm[at] + 1e-9


def test_stenosis_narrows_and_occlusion_stops_flow_downstream() -> None:
    anatomy = build_anatomy(np.random.default_rng(0), dominance="right")
    lesions = [Lesion("11", 75, 10.0, 0.5), Lesion("6", 100, 10.0, 0.5)]
    effects = apply_lesions(anatomy, lesions)
    name, centre = lesion_centre(anatomy, "11", 0.5)
    healthy = anatomy.vessel(name).radius_mm[centre]
    assert effects.lumen_radius_mm[name][centre] == pytest.approx(0.25 * healthy)
    name, centre = lesion_centre(anatomy, "6", 0.5)
    assert effects.lumen_radius_mm[name][centre] == pytest.approx(0.0)
    lad = anatomy.vessel("LAD")
    distal = np.isin(lad.segment_code, [SEGMENT_CODES["7"], SEGMENT_CODES["8"]])
    assert not effects.antegrade["LAD"][distal].any()
    assert not effects.antegrade["D1"].any()  # the diagonal leaves the LAD beyond the CTO
    assert effects.antegrade["LCX"].all()  # a tight stenosis still lets contrast through


def _render(anatomy, lesions, seed=0, frames=12):
    """One short LCA cine, everything random fixed by `seed` (same noise for equal seeds)."""
    rng = np.random.default_rng(seed)
    scene = build_scene(anatomy, apply_lesions(anatomy, lesions), "LCA", rng)
    arm = CArm(-30, -25).centred_on(scene.injected_points)
    motion = replace(sample_cardiac_motion(rng), radial_shortening=0.0,
                     longitudinal_shortening=0.0, twist_deg=0.0, swing_mm=np.zeros(3))
    timeline = Timeline(10.0, frames, motion, Breathing(0.0, 4.0, 0.0, np.zeros(3)),
                        Injection(0.3, 0.6, 400.0, 0.1, 0.3))
    background = render_background(arm, anatomy.heart, rng, 3.0)
    return render_cine(scene, arm, anatomy.heart, timeline, background, noise_field(rng, 512),
                       rng)


def test_cto_hides_the_vessel_beyond_it_but_not_the_stump() -> None:
    anatomy = build_anatomy(np.random.default_rng(0), dominance="right")
    cine = _render(anatomy, [Lesion("7", 100, 8.0, 0.5)])
    labelled = set(np.unique(cine.masks).tolist())
    assert SEGMENT_CODES["7"] in labelled and SEGMENT_CODES["6"] in labelled
    assert SEGMENT_CODES["8"] not in labelled and SEGMENT_CODES["10"] not in labelled


def test_calcium_shows_before_contrast_and_thrombus_is_a_filling_defect() -> None:
    anatomy = build_anatomy(np.random.default_rng(0), dominance="right")
    plain = _render(anatomy, [Lesion("6", 50, 10.0, 0.5)])
    calcified = _render(anatomy, [Lesion("6", 50, 10.0, 0.5, calcification="severe")])
    clotted = _render(anatomy, [Lesion("6", 50, 10.0, 0.5, thrombus=True)])
    assert plain.opacification[0] == 0.0  # frame 0 comes before the injection
    before = calcified.frames[0].astype(int) - plain.frames[0].astype(int)
    assert before.min() < -15 and (before != 0).mean() < 0.01  # dark, and only at the lesion
    full = int(np.argmax(plain.opacification))
    defect = clotted.frames[full].astype(int) - plain.frames[full].astype(int)
    assert defect.max() > 10 and (defect != 0).mean() < 0.01  # less contrast: brighter


# --- timing, key frames ---------------------------------------------------------------------

def test_keyframe_rule() -> None:
    assert keyframe_label(0.1, 0.0) == "other"
    assert keyframe_label(0.9, 10.0) == "better"
    assert keyframe_label(0.9, 80.0) == "bad"
    assert keyframe_label(0.5, 10.0) == "bad"


def test_every_view_has_inflow_full_opacification_and_truth_per_frame(library_study) -> None:
    for view in library_study.views:
        cine, timeline = view.cine, view.timeline
        assert 2.0 <= timeline.n_frames / timeline.fps <= 5.0 + 1 / timeline.fps
        assert 7.5 <= timeline.fps <= 15
        assert cine.frames.shape == (timeline.n_frames, 512, 512) == cine.masks.shape
        assert cine.labels[0] == "other" and "better" in cine.labels
        assert cine.opacification.max() >= 0.8
        assert [keyframe_label(o, m) for o, m in zip(cine.opacification, cine.motion_mm_s,
                                                     strict=True)] == cine.labels
        side = {SEGMENT_CODES[n] for n, s in SEGMENTS.items() if s.laterality == view.laterality}
        assert set(np.unique(cine.masks).tolist()) - {0} <= side


# --- study truth, files and reports ---------------------------------------------------------

def test_truth_is_consistent(cli_study: Path) -> None:
    truth = truth_of(cli_study)
    sides = [view["laterality"] for view in truth["views"]]
    assert truth["seed"] == CLI_SEED
    assert 4 <= sides.count("LCA") <= 6 and 2 <= sides.count("RCA") <= 3
    for lesion in truth["lesions"]:
        assert lesion["cto"] == (lesion["stenosis_percent"] == 100)
    by_segment = {s["segment"]: s for s in truth["segments"]}
    for lesion in truth["lesions"]:
        assert by_segment[lesion["segment"]]["stenosis_percent"] == lesion["stenosis_percent"]
    visible = set().union(*(view["visible_segments"] for view in truth["views"]))
    assert {lesion["segment"] for lesion in truth["lesions"]} <= visible
    for view in truth["views"]:
        assert view["view"] == view_from_angles(view["primary_angle"], view["secondary_angle"])
        assert len(view["frames"]["keyframe"]) == view["n_frames"]
        masks = np.load(cli_study / view["masks"])["masks"]
        assert masks.shape == (view["n_frames"], 512, 512)


def test_every_lesion_segment_is_visible_in_some_view(library_study) -> None:
    visible = set().union(*(view.visible_segments for view in library_study.views))
    assert {lesion.segment for lesion in library_study.lesions} <= visible
    assert {f["segment"] for f in library_study.findings() if f["visible"]} == visible


def test_in_memory_study_carries_the_geometry(library_study) -> None:
    study = library_study.to_study()
    assert len(study.cines) == len(library_study.views) and study.clinical_text
    for cine, view in zip(study.cines, library_study.views, strict=True):
        assert cine.frames is view.cine.frames and cine.fps == view.timeline.fps
        assert (cine.primary_angle, cine.secondary_angle) == (view.arm.primary_deg,
                                                              view.arm.secondary_deg)


def test_dicoms_read_back_through_the_project_reader(cli_study: Path) -> None:
    truth = truth_of(cli_study)
    for view in truth["views"]:
        cine = read_cine(cli_study / view["dicom"])
        assert cine.n_frames == view["n_frames"] and (cine.rows, cine.cols) == (512, 512)
        assert cine.primary_angle == pytest.approx(view["primary_angle"])
        assert cine.secondary_angle == pytest.approx(view["secondary_angle"])
        assert cine.fps == pytest.approx(view["fps"])
        assert cine.sid_mm == pytest.approx(view["sid_mm"])
        assert cine.pixel_spacing_mm == pytest.approx((view["pixel_spacing_mm"],) * 2)
        assert cine.modality == "XA" and cine.study_uid == truth["study_instance_uid"]
        assert cine.extra["transfer_syntax"] == "1.2.840.10008.1.2.1"


def test_rle_dicom_decodes_to_the_same_pixels(library_study, tmp_path: Path) -> None:
    single = replace(library_study, views=library_study.views[:1])
    write_study(single, tmp_path, rle=True)
    cine = read_cine(next((tmp_path / single.study_id / "dicom").glob("*.dcm")))
    assert cine.extra["transfer_syntax"] == "1.2.840.10008.1.2.5"
    assert np.array_equal(cine.frames, single.views[0].cine.frames)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_dicom_is_a_valid_xa_image_for_dciodvfy(cli_study: Path) -> None:
    check = subprocess.run(["dciodvfy", str(next((cli_study / "dicom").glob("*.dcm")))],
                           capture_output=True, text=True)
    assert "XAImage" in check.stderr + check.stdout
    assert "Error" not in check.stderr + check.stdout


def test_png_and_mp4_previews(library_study, tmp_path: Path) -> None:
    single = replace(library_study, views=library_study.views[:1])
    write_study(single, tmp_path, png=True, mp4=True)
    folder, frames = tmp_path / single.study_id, single.views[0].timeline.n_frames
    assert len(list(folder.glob("png/*/*.png"))) == frames
    video = read_cine(next(folder.glob("mp4/*.mp4")))
    assert video.n_frames == frames and video.fps == pytest.approx(single.views[0].timeline.fps)


def test_deepcoro_csv_matches_the_truth(cli_study: Path) -> None:
    truth = truth_of(cli_study)
    with (cli_study / "deepcoro.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(truth["views"])
    row = rows[0]
    stenosis = [k for k in row if k.endswith("_stenosis")]
    assert len(stenosis) == 18
    assert row["prox_lcx_cto"] == "True" and row["prox_lcx_thrombus"] == "False"  # #11 CTO
    assert row["prox_lcx_stenosis"] == "100" and row["prox_lcx_stenosis_binary"] == "1"
    assert row["D2_stenosis"] == "75" and row["D2_calcif_binary"] == "mild"
    assert row["mid_lad_stenosis"] == "0" and row["mid_lad_cto"] == "False"
    assert row["pda_stenosis"] == "0" and row["dist_lcx_stenosis"] == ""  # right dominant
    assert {r["DICOMPath"] for r in rows} == {v["dicom"] for v in truth["views"]}


@pytest.mark.parametrize("kind", ["summary", "clinical"])
def test_reports_exist_in_english_and_japanese(cli_study: Path, kind: str) -> None:
    reports = truth_of(cli_study)["reports"][kind]
    assert reports["en"].isascii() and not reports["ja"].isascii()
    for language in ("en", "ja"):
        text = (cli_study / "reports" / f"{kind}_{language}.txt").read_text(encoding="utf-8")
        assert text.strip() == reports[language]


def test_summaries_name_exactly_the_lesion_segments(cli_study: Path, library_study) -> None:
    truth = truth_of(cli_study)
    studies = [(truth["lesions"], truth["reports"]),
               ([vars(lesion) for lesion in library_study.lesions], library_study.reports())]
    for lesions, reports in studies:
        expected = {lesion["segment"] for lesion in lesions}
        for language in ("en", "ja"):
            text = reports["summary"][language]
            assert set(re.findall(r"#(\d+[a-c]?)", text)) == expected
            parsed = parse_report(text, language)  # the project's own report parser agrees
            assert {f.segment for f in parsed.findings} == expected
            assert parsed.recommendations == [reports["treatment"]["recommendation"]]


def test_treatment_follows_the_guideline_rule() -> None:
    assert treatment_plan([]).recommendation == "medical"
    assert treatment_plan([Lesion("7", 50, 10, 0.5)]).recommendation == "medical"
    assert treatment_plan([Lesion("11", 75, 10, 0.5)]).recommendation == "pci"
    assert treatment_plan([Lesion("5", 50, 10, 0.5)]).reason == "left_main"
    three = [Lesion("6", 90, 10, 0.5), Lesion("12a", 75, 10, 0.5), Lesion("2", 100, 10, 0.5)]
    assert treatment_plan(three).reason == "three_vessel"


# --- determinism and commands ---------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(cli_study: Path, tmp_path: Path) -> None:
    write_study(simulate_study(CLI_SEED), tmp_path)
    again = tmp_path / cli_study.name
    files = sorted(p.relative_to(cli_study) for p in cli_study.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (cli_study / name).read_bytes() == (again / name).read_bytes(), name


def test_dataset_command_writes_studies_and_one_label_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the README writes it, without --out: the studies go to ./sim-dataset."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sim", "dataset", "--n-studies", "1", "--seed", "2"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "sim-dataset"
    (seed,) = dataset_seeds(2, 1)
    assert truth_of(next(p for p in out.iterdir() if p.is_dir()))["seed"] == seed
    with (out / "deepcoro.csv").open(encoding="utf-8") as stream:
        paths = [row["DICOMPath"] for row in csv.DictReader(stream)]
    assert paths and all((out / path).is_file() for path in paths)


def test_sim_commands_refuse_what_they_cannot_read_or_write(tmp_path: Path) -> None:
    """Exit 3 naming the input or the folder, never a traceback."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    result = CliRunner().invoke(app, ["sim", "study", "--out", str(blocked / "x"), "--json"])
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert json.loads(result.stdout)["path"].startswith(str(blocked))
    missing = tmp_path / "missing.dcm"
    result = CliRunner().invoke(app, ["sim", "compare", str(missing),
                                      "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 3 and str(missing) in result.output


def test_compare_command_draws_the_figure(shared_data: Path, tmp_path: Path) -> None:
    real = shared_data / "cine" / "clinical-lca" / "Projection_0"
    out = tmp_path / "sim-vs-real.png"
    result = CliRunner().invoke(app, ["sim", "compare", str(real), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 50_000


def test_followup_keeps_the_patient_and_anatomy_and_progresses_every_lesion():
    from angioscribe.sim.followup import Progression, simulate_followup
    from angioscribe.sim.study import simulate_study
    from angioscribe.sim.writers import xa_dataset

    baseline = simulate_study(2, n_left=1, n_right=1)
    followup = simulate_followup(2, Progression(grades=1, new_lesion_probability=1.0),
                                 n_left=1, n_right=1)
    assert followup.patient.patient_id == baseline.patient.patient_id
    assert followup.study_id == f"{baseline.patient.patient_id}V2"
    assert followup.truth()["visit"] == 2 and baseline.truth()["visit"] == 1
    assert followup.patient.study_date > baseline.patient.study_date
    assert followup.patient.birth_date == baseline.patient.birth_date
    assert followup.anatomy.segments == baseline.anatomy.segments
    assert followup.stents == baseline.stents
    assert [(v.laterality, v.arm.primary_deg, v.arm.secondary_deg) for v in followup.views] == [
        (v.laterality, v.arm.primary_deg, v.arm.secondary_deg) for v in baseline.views]
    assert followup.study_instance_uid != baseline.study_instance_uid
    assert (followup.views[0].sop_instance_uid(followup)
            != baseline.views[0].sop_instance_uid(baseline))
    after = {lesion.segment: lesion.stenosis_percent for lesion in followup.lesions}
    before = {lesion.segment: lesion.stenosis_percent for lesion in baseline.lesions}
    assert all(after[segment] >= grade for segment, grade in before.items())
    assert any(after[segment] > grade for segment, grade in before.items())
    assert len(after) == len(before) + 1  # the new lesion
    assert after["7"] == 99  # a 99 % lesion does not occlude
    first, second = xa_dataset(baseline, baseline.views[0]), xa_dataset(followup,
                                                                        followup.views[0])
    assert first.PatientID == second.PatientID and first.StudyDate < second.StudyDate


def test_followup_narrowing_stops_short_of_an_occlusion():
    from angioscribe.sim.followup import narrowed

    lesion = Lesion("6", 50, 10.0, 0.5)
    assert [narrowed(lesion, grades).stenosis_percent for grades in (0, 1, 2, 9)] == [
        50, 75, 90, 99]
    assert narrowed(replace(lesion, stenosis_percent=100), 2).stenosis_percent == 100
    assert narrowed(replace(lesion, segment="5", stenosis_percent=75), 3).stenosis_percent == 90

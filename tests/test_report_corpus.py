"""Report corpora: simulator studies and ARCADE's annotated frames in CAG-VLM's parallel form,
targets that parse back to their findings, leak-free splits, the JSONL schema read back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from angioscribe.anatomy import SEGMENTS
from angioscribe.cli import app
from angioscribe.deid import pseudonym
from angioscribe.errors import InputError
from angioscribe.report import parse_report
from angioscribe.report.corpus import (
    CorpusSample,
    _patient_splits,
    arcade_samples,
    corpus_records,
    model_clue_reader,
    model_lesion_namer,
    read_corpus,
    sim_samples,
    write_corpus,
)
from angioscribe.report.draft import KeyFrameImage
from angioscribe.report.template import treatment_plan

SALT = "corpus-test"


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory) -> Path:
    """One simulated study, as `sim study` writes it."""
    out = tmp_path_factory.mktemp("sim")
    result = CliRunner().invoke(app, ["sim", "study", "--out", str(out), "--seed", "11"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def arcade(shared_data):
    return arcade_samples(shared_data, salt=SALT)


def _segments_read(text: str, lang: str) -> set[str]:
    return {f.segment for f in parse_report(text, lang).findings if f.segment and not f.negated}


def test_sim_samples_hold_every_view_clinical_text_and_a_target_of_the_truth(sim_dataset):
    [sample] = sim_samples(sim_dataset, salt=SALT)
    truth = json.loads(next(sim_dataset.glob("*/truth.json")).read_text(encoding="utf-8"))
    assert sample.patient_id == pseudonym(truth["patient"]["patient_id"], SALT)
    assert truth["patient"]["patient_id"] not in sample.patient_id
    assert [(i.side, i.view, i.frame) for i in sample.images] == [
        (v["laterality"], v["view"], v["best_frame"]) for v in truth["views"]]
    assert all(Path(image.path).is_file() for image in sample.images)
    plan = truth["reports"]["treatment"]["recommendation"]
    for record in corpus_records([sample]):
        assert record.clinical_text == truth["reports"]["clinical"][record.lang]
        parsed = parse_report(record.target, record.lang)
        assert _segments_read(record.target, record.lang) == {
            lesion["segment"] for lesion in truth["lesions"]}
        assert parsed.recommendations == [plan] == [treatment_plan(record.findings).recommendation]
        assert parsed.stated_laterality == "both"  # every study has LCA and RCA views


def test_sim_splits_keep_each_patient_in_one_split():
    samples = [CorpusSample(f"s{i}", f"p{i % 7}", "", [], [], "sim") for i in range(40)]
    splits = _patient_splits(samples, seed=0)
    by_patient: dict[str, set[str]] = {}
    for sample, split in zip(samples, splits, strict=True):
        by_patient.setdefault(sample.patient_id, set()).add(split)
    assert all(len(found) == 1 for found in by_patient.values())
    assert set(splits) <= {"train", "val", "test"} and "train" in splits


def test_arcade_annotated_pairs_name_lesions_by_the_labelled_segments(arcade):
    """Frames both tasks label: side from the segments, lesions from the annotations, nothing
    derived; the targets parse back to exactly those segments on that side."""
    samples = arcade.samples
    assert len(samples) >= 300 and not any(sample.derived for sample in samples)
    for sample in samples:
        [image] = sample.images
        assert image.side in ("LCA", "RCA") and sample.findings
        for record in corpus_records([sample]):
            assert _segments_read(record.target, record.lang) == {
                f["segment"] for f in sample.findings}
            assert parse_report(record.target, record.lang).stated_laterality in (
                image.side, "both")
    assert {SEGMENTS[f["segment"]].laterality for s in samples for f in s.findings} == {
        "LCA", "RCA"}
    assert set(arcade.skipped.values()) <= {
        "no syntax labels of this view (name its lesions with the model: derive)",
        "no lesion on a named segment"}


def test_arcade_splits_keep_official_val_and_no_group_on_both_sides(arcade):
    splits_of_patient: dict[str, set[str]] = {}
    for sample in arcade.samples:
        splits_of_patient.setdefault(sample.patient_id, set()).add(sample.split)
        if "/val/" in sample.id:  # ARCADE's own validation frames stay validation
            assert sample.split == "val"
    assert all(len(found) == 1 for found in splits_of_patient.values())
    assert {sample.split for sample in arcade.samples} == {"train", "val"}


def test_corpus_file_round_trip_with_paths_relative_to_it(arcade, tmp_path):
    path = tmp_path / "corpora" / "arcade.jsonl"
    records = list(corpus_records(arcade.samples[:5], ["ja"]))
    assert write_corpus(records, path) == 5
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "patient_id", "split", "lang", "images", "clinical_text",
                          "target", "findings", "derived", "source"}  # no `clues`: not run
    assert not Path(first["images"][0]["path"]).is_absolute()
    back = read_corpus(path)
    assert [(r.id, r.target, r.lang) for r in back] == [(r.id, r.target, r.lang) for r in records]
    assert all(Path(r.images[0].path).samefile(o.images[0].path)
               for r, o in zip(back, records, strict=True))


@pytest.mark.parametrize("line, problem", [
    ({"id": "a", "patient_id": "p", "split": "train", "lang": "en", "images": []},
     "missing field(s): target"),
    ({"id": "a", "patient_id": "p", "split": "dev", "lang": "en", "target": "t",
      "images": [{"path": "x.png"}]}, "split 'dev'"),
    ({"id": "a", "patient_id": "p", "split": "val", "lang": "de", "target": "t",
      "images": [{"path": "x.png"}]}, "lang 'de'"),
    ({"id": "a", "patient_id": "p", "split": "val", "lang": "en", "target": "t",
      "images": [{"path": "x.png", "side": "left"}]}, "side 'left'"),
])
def test_a_hospital_corpus_line_that_breaks_the_schema_is_named(tmp_path, line, problem):
    good = {"id": "b", "patient_id": "p", "split": "train", "lang": "ja", "target": "所見なし",
            "images": [{"path": "b.png", "frame": 0, "side": "LCA", "view": None}]}
    path = tmp_path / "hospital.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"hospital.jsonl:2: .*{re.escape(problem)}"):
        read_corpus(path)


def test_report_corpus_command_writes_the_corpus_and_names_a_bad_source(sim_dataset, tmp_path):
    out = tmp_path / "corpus.jsonl"
    result = CliRunner().invoke(app, ["data", "report-corpus", "--out", str(out), "--sim",
                                      str(sim_dataset), "--sim", str(tmp_path / "none"),
                                      "--lang", "en", "--json"])
    assert result.exit_code == 1, result.output  # one of two sources failed
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["source"] == "sim" and rows[0]["samples"] == 1
    assert rows[1]["path"] == str(tmp_path / "none") and "no simulated study" in rows[1]["error"]
    [record] = read_corpus(out)
    assert record.lang == "en" and record.source == "sim" and len(record.images) >= 2
    usage = CliRunner().invoke(app, ["data", "report-corpus", "--out", str(out)])
    assert usage.exit_code == 2


def test_key_frame_reference_is_what_corpus_images_store():
    frame = KeyFrameImage("a.dcm", 3, "LCA", "RAO Caudal")
    sample = CorpusSample("x", "p", "train", [frame], [{"segment": "6", "stenosis_percent": 80}],
                          "sim")
    [record] = corpus_records([sample], ["en"])
    assert record.to_dict()["images"] == [frame.reference()]
    assert record.target.startswith("Left coronary angiogram (RAO Caudal). LAD #6 shows 80%")


def test_model_clues_are_the_image_models_findings_and_travel_with_the_record(arcade, tmp_path):
    """A frame's clues are what the shipped models find on it (one entry per segment, QCA %),
    kept apart from the annotated truth; the record prompts with them and reads them back."""
    clues_of = model_clue_reader()
    sample = arcade.samples[0]
    sample.clues = clues_of(_arcade_image(sample))
    assert sample.clues, "the models find lesions on an annotated stenosis frame"
    assert all(clue["segment"] in SEGMENTS and "stenosis_percent" in clue for clue in sample.clues)
    [record] = corpus_records([sample], ["en"])
    assert record.prompt_findings == sample.clues and record.findings == sample.findings
    path = tmp_path / "clues.jsonl"
    write_corpus([record], path)
    [back] = read_corpus(path)
    assert back.clues == json.loads(json.dumps(sample.clues))
    plain = corpus_records([CorpusSample("y", "p", "train", sample.images, sample.findings,
                                         "arcade")], ["en"])
    assert next(plain).prompt_findings == sample.findings  # no clues: the truth is the prompt


def _arcade_image(sample: CorpusSample):
    from angioscribe.data.arcade import ArcadeImage

    path = Path(sample.images[0].path)
    return ArcadeImage(0, path.name, path, 512, 512)


def test_derived_samples_name_the_annotated_lesions_with_the_syntax_model(arcade, shared_data):
    """A stenosis frame without syntax labels (`--derive`): the shipped SYNTAX model names
    each annotated lesion's segment on the side its segments show."""
    from angioscribe.data.arcade import load_arcade

    skipped = {Path(path).name for path, reason in arcade.skipped.items()
               if reason.startswith("no syntax labels")}
    image = next(image for image in load_arcade(shared_data / "arcade", "stenosis", "val").images
                 if image.path.name in skipped and image.stenosis_polygons)
    side, segments = model_lesion_namer()(image)
    assert side in ("LCA", "RCA") and segments
    assert all(SEGMENTS[segment].laterality in (side, "both") for segment in segments)

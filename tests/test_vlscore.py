"""VLScore: geometric properties (hypothesis), calibration, and a tiny random SigLIP embedder
loaded through the same factory that takes `hf-hub:` ids online."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.errors import InputError
from angioscribe.evaluate.embedders import Embedder, load_embedder
from angioscribe.evaluate.vlscore import (
    CALIBRATION_FILE,
    Calibration,
    calibrate,
    calibration_path,
    embed_triples,
    mismatched,
    triangle_area,
    vlscore,
)

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
vectors = st.integers(2, 12).flatmap(
    lambda d: st.tuples(*[arrays(np.float64, d, elements=finite)] * 3)
)


@given(vectors, st.floats(-3, 3, allow_nan=False))
def test_degenerate_triangle_has_zero_area_and_scores_one(triple, t):
    image, _, generated = triple
    on_the_line = image + t * (generated - image)
    area = triangle_area(image, on_the_line, generated)
    scale = 1 + np.abs(image).max() + np.abs(generated).max()
    assert area <= 1e-6 * scale**2
    assert vlscore(triangle_area(image, generated, generated), c=1.0) == 1.0


@given(vectors)
def test_symmetric_in_reference_and_generated(triple):
    image, reference, generated = triple
    assert triangle_area(image, reference, generated) == pytest.approx(
        triangle_area(image, generated, reference), rel=1e-9, abs=1e-9
    )


@given(arrays(np.float64, (3, 3), elements=finite))
def test_area_is_the_triangles_area_in_3d(points):
    image, reference, generated = points
    expected = 0.5 * np.linalg.norm(np.cross(reference - image, generated - image))
    assert triangle_area(image, reference, generated) == pytest.approx(expected, rel=1e-6, abs=1e-6)


@given(vectors, arrays(np.float64, 1, elements=finite))
def test_translation_does_not_change_the_area(triple, shift):
    moved = [v + shift[0] for v in triple]
    assert triangle_area(*moved) == pytest.approx(triangle_area(*triple), rel=1e-6, abs=1e-4)


@settings(max_examples=50)
@given(st.integers(2, 20).flatmap(lambda n: arrays(np.float64, (3, n, 4), elements=finite)))
def test_calibration_bounds_scores_to_unit_interval(embeddings):
    areas = triangle_area(*embeddings)
    if not areas.max() > 0:
        return
    scores = vlscore(areas, calibrate(areas))
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[np.argmax(areas)] == 0.0


def test_calibration_needs_a_real_triangle():
    with pytest.raises(ValueError, match="non-degenerate"):
        calibrate([0.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        vlscore(0.5, c=0.0)


def test_mismatched_never_keeps_a_text_with_its_case():
    texts = [f"report {i}" for i in range(7)]
    assert all(a != b for a, b in zip(texts, mismatched(texts, seed=4), strict=True))
    assert sorted(mismatched(texts, seed=4)) == sorted(texts)


def test_calibrations_for_both_normalisations_live_in_one_file(tmp_path):
    path = tmp_path / "model" / CALIBRATION_FILE
    Calibration("m", False, 3.5, 10).save(path)
    Calibration("m", True, 0.4, 10).save(path)
    assert Calibration.load(path, normalize=False).c == 3.5
    assert Calibration.load(path, normalize=True).c == 0.4


def test_calibration_path_is_beside_a_local_model_or_in_a_cache(tmp_path):
    assert calibration_path(str(tmp_path)) == tmp_path / CALIBRATION_FILE
    cached = calibration_path("hf-hub:google/siglip2-so400m-patch14-384", cache=tmp_path)
    assert cached == tmp_path / "google--siglip2-so400m-patch14-384.json"


# --- a tiny random SigLIP, saved and loaded by path ---------------------------------------------

WORDS = [
    "[PAD]",
    "[UNK]",
    "lcx",
    "lad",
    "rca",
    "#",
    "11",
    "12",
    "75",
    "90",
    "%",
    "stenosis",
    "shows",
    "consider",
    "pci",
]


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    torch.manual_seed(0)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    layers = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
    }
    config = SiglipConfig(
        text_config={"vocab_size": len(WORDS), "max_position_embeddings": 16, **layers},
        vision_config={"image_size": 32, "patch_size": 8, **layers},
    )
    folder = tmp_path_factory.mktemp("tiny-siglip")
    SiglipModel(config).save_pretrained(folder)
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", model_max_length=16
    ).save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _image(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 48), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_hub_style_model_loads_from_a_folder_and_embeds_both_modalities(tiny_siglip):
    embedder = load_embedder(str(tiny_siglip))
    assert isinstance(embedder, Embedder)
    images = embedder.embed_images([_image(0), _image(1), _image(0)])
    texts = embedder.embed_texts(["LCX #11 shows 75% stenosis", "RCA 90%"])
    assert images.shape == (3, 16) and texts.shape == (2, 16)
    assert np.allclose(images[0], images[2]) and not np.allclose(images[0], images[1])
    assert not np.allclose(texts[0], texts[1])


def test_normalised_triples_lie_on_the_unit_sphere(tiny_siglip):
    embedder = load_embedder(str(tiny_siglip))
    triple = embed_triples(embedder, [_image(2)], ["lcx # 11 75 %"], ["lad 90 %"], normalize=True)
    for part in triple:
        assert np.linalg.norm(part, axis=1) == pytest.approx(1.0)


def test_unknown_embedder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="not a local model folder"):
        load_embedder("no-such-model")
    with pytest.raises(InputError, match="cannot load"):
        load_embedder(str(tmp_path))


def test_calibrate_then_evaluate_with_the_embedder_from_the_cli(tiny_siglip, tmp_path):
    references = ["LCX #11 shows 75% stenosis", "RCA # 12 90 % stenosis", "LAD shows 90 %"]
    truth = tmp_path / "truth.jsonl"
    with truth.open("w") as handle:
        for i, text in enumerate(references):
            _image(10 + i).save(tmp_path / f"case{i}.png")
            handle.write(json.dumps({"id": f"c{i}", "text": text, "image": f"case{i}.png"}) + "\n")
    pred = tmp_path / "pred.jsonl"
    pred.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "model": "m", "text": t}) + "\n"
            for i, t in enumerate(["LCX #12 shows 90%", "RCA 90%", "LAD 90%"])
        )
    )
    runner = CliRunner()
    calibrated = runner.invoke(
        app,
        [
            "evaluate",
            "vlscore-calibrate",
            "--embedder",
            str(tiny_siglip),
            "--truth",
            str(truth),
            "--pred",
            str(pred),
            "--json",
        ],
    )
    assert calibrated.exit_code == 0, calibrated.output
    stored = json.loads(calibrated.stdout)
    assert stored["c"] > 0 and stored["triples"] == 6
    assert (tiny_siglip / CALIBRATION_FILE).exists()
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "reports",
            "--pred",
            str(pred),
            "--truth",
            str(truth),
            "--embedder",
            str(tiny_siglip),
            "--out",
            str(out),
            "--n-boot",
            "50",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = [
        json.loads(line)["metrics"] for line in (out / "per_draft.jsonl").read_text().splitlines()
    ]
    values = [s[f"vlscore:{tiny_siglip}"] for s in scores]
    assert all(0 <= v <= 1 for v in values)
    assert (out / "vlscore.png").stat().st_size > 0


def test_evaluate_without_calibration_says_how_to_make_one(tiny_siglip, tmp_path):
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps({"id": "c0", "text": "LAD 90%"}) + "\n")
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "reports",
            "--pred",
            str(truth),
            "--truth",
            str(truth),
            "--embedder",
            str(tiny_siglip),
            "--normalize",
        ],
    )
    assert result.exit_code == 3
    assert "vlscore-calibrate" in result.output

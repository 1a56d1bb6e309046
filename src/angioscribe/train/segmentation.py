"""Training, validation and export of the ARCADE segmentation models (syntax, stenosis).

Samples are random crops at full resolution (288 px of the 512 px frames): about 3x cheaper per
step than whole frames on a CPU while the network still sees vessels at their real width; at
inference the fully convolutional net runs on the whole frame.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import Dataset

from angioscribe.data.arcade import ArcadeImage, load_arcade, load_coco_images
from angioscribe.errors import InputError
from angioscribe.evaluate.arcade_breakdown import arcade_breakdown, plot_breakdown
from angioscribe.evaluate.arcade_metric import arcade_f1
from angioscribe.evaluate.bootstrap import bootstrap_ci
from angioscribe.models.registry import (
    ModelEntry,
    Preprocess,
    build_model,
    get_entry,
    read_artifact_entry,
    save_artifact,
    starting_model,
)
from angioscribe.models.segmenter import DECODER_CHANNELS, DECODER_CONV
from angioscribe.progress import progress, stderr
from angioscribe.regions import (
    Region,
    SyntaxRules,
    coco_results,
    stenosis_regions,
    syntax_candidates,
    syntax_regions,
)
from angioscribe.train.augment import XrayAugment
from angioscribe.train.config import TrainConfig
from angioscribe.train.loop import export_checkpoint, load_model_weights
from angioscribe.train.losses import DiceCELoss, class_weights
from angioscribe.train.thresholds import (
    StenosisGrid,
    SyntaxTuning,
    choose_syntax_tuning,
    stenosis_grid,
    syntax_table,
    syntax_tuning,
    tune_stenosis_rules,
    tune_syntax_rules,
)


class CropDataset(Dataset):
    """Frames and label maps held in memory; item i of epoch e is a fixed random crop."""

    def __init__(self, frames: list[np.ndarray], masks: list[np.ndarray], augment: XrayAugment,
                 preprocess: Preprocess, seed: int) -> None:
        self.frames, self.masks = frames, masks
        self.augment, self.preprocess, self.seed = augment, preprocess, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, mask = self.augment(self.frames[index], self.masks[index], rng)
        return self.preprocess.normalise(image), torch.from_numpy(mask.astype(np.int64))


# px around an annotated lesion in which predicted probability counts against it (lesion_dice)
LESION_REACH = 16


def segmentation_loss(config: TrainConfig, masks: list[np.ndarray], num_classes: int) -> nn.Module:
    """Cross-entropy weighted by the training labels' class frequencies plus soft Dice: over the
    batch per class, or (`lesion_dice`, masks numbering the lesions) per lesion."""
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=num_classes)
    if config.lesion_dice:
        counts = np.array([counts[0], counts[1:].sum()])
    return DiceCELoss(class_weights(counts, config.class_weight_power), config.dice_weight,
                      lesion_reach=LESION_REACH if config.lesion_dice else None)


def training_entry(config: TrainConfig) -> ModelEntry:
    """The registry entry being trained, with the config's encoder and zoom overrides applied."""
    entry = get_entry(config.model)
    overrides = {key: value for key, value in (("encoder", config.encoder),
                                               ("encoder_weights", config.encoder_weights))
                 if value is not None}
    if overrides:
        entry = replace(entry, config={**entry.config, **overrides})
    if config.zoom is not None:
        entry = replace(entry, preprocess=replace(entry.preprocess, zoom=float(config.zoom)))
    return entry


def read_split(
    config: TrainConfig, split: str, limit: int | None
) -> tuple[list[ArcadeImage], list[np.ndarray], list[np.ndarray]]:
    """ARCADE images of one split with their frames and label maps, loaded once into memory."""
    images = load_arcade(config.data_root, config.task, split).images[:limit]
    frames, masks = frames_and_masks(config, images, f"{config.task}/{split}")
    return images, frames, masks


def read_extra_train(config: TrainConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames and label maps of the config's `extra_train` sets (e.g. pseudo-labels)."""
    frames: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for number, source in enumerate(config.extra_train, 1):
        if not isinstance(source, dict) or {"images", "annotations"} - set(source):
            raise InputError(f"extra_train entry {number}",
                             f"needs 'images' (a folder) and 'annotations' (a COCO file), "
                             f"got {source!r}")
        images = load_coco_images(source["images"], source["annotations"])
        more_frames, more_masks = frames_and_masks(config, images, Path(source["annotations"]).name)
        frames += more_frames
        masks += more_masks
    return frames, masks


def frames_and_masks(config: TrainConfig, images: list[ArcadeImage],
                     what: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each image's frame and its label map for the config's task, with progress."""
    frames, masks = [], []
    for image in progress(images, f"Loading {what}"):
        frames.append(image.load())
        masks.append(image.mask(config.task, lesion_gap=config.lesion_gap,
                                numbered=config.lesion_dice, centres=config.lesion_centres))
    return frames, masks


class SegmentationTraining:
    """The `TrainingTask` for one ARCADE task: crops in, Dice+CE out, official F1 on val."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.entry = training_entry(config)
        self._check_labels()
        self.model = starting_model(self.entry, config.init_from)
        extra_frames, extra_masks = read_extra_train(config)  # first: a bad entry fails fast
        _, frames, masks = read_split(config, "train", config.train_limit)
        frames, masks = frames + extra_frames, masks + extra_masks
        self.val_images, self.val_frames, _ = read_split(config, "val", config.val_limit)
        make_augment = XrayAugment if config.augment else XrayAugment.crops_only
        augment = make_augment(crop=config.crop_size,
                               flips=bool(self.entry.config.get("flip_invariant")),
                               foreground_focus=config.foreground_focus,
                               zoom=self.entry.preprocess.zoom)
        self.train_set = CropDataset(frames, masks, augment, self.entry.preprocess, config.seed)
        self.criterion = segmentation_loss(config, masks, int(self.entry.config["num_classes"]))

    def _check_labels(self) -> None:
        """A centre-labelled mask needs a model with a centre class, and only such masks can
        teach that class."""
        has_centres = "stenosis centre" in self.entry.labels
        if bool(self.config.lesion_centres) != has_centres:
            raise InputError(f"config for {self.entry.name}",
                             "lesion_centres needs a model with a 'stenosis centre' class "
                             "(stenosis-seg-centres) and such a model needs lesion_centres > 0")

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, targets = batch
        logits = model(images.contiguous(memory_format=torch.channels_last)).float()
        return self.criterion(logits, targets)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Official F1 on val with thresholds chosen there (global ones only and no stenosis
        cuts, to stay quick: a minute, not seven; the export tunes everything)."""
        probabilities = predict_probabilities(model, self.entry.preprocess, self.val_frames)
        if self.config.task == "syntax":
            table = syntax_table([syntax_candidates(p) for p in probabilities],
                                 self.val_images)
            rules, f1 = tune_syntax_rules(table, per_class=False)
            default_f1 = table.f1(SyntaxRules())
            return {"score": f1, "f1_default_rules": default_f1, "min_score": rules.min_score}
        rules, f1 = tune_stenosis_rules(probabilities, self.val_images, lengths=(None,))
        return {"score": f1, "pixel_threshold": rules.pixel_threshold}


@torch.inference_mode()
def predict_probabilities(model: nn.Module, preprocess: Preprocess, frames: list[np.ndarray],
                          batch_size: int = 4) -> list[np.ndarray]:
    """Softmax maps (C, H, W) float16 for same-size frames (float16 halves the memory), at the
    frames' size whatever the network's zoom."""
    model.eval()
    out = []
    for start in progress(range(0, len(frames), batch_size), "Predicting val frames"):
        batch = torch.stack([preprocess(f) for f in frames[start : start + batch_size]])
        probs = model.probabilities(batch.contiguous(memory_format=torch.channels_last))
        probs = preprocess.restore(probs, frames[start].shape)
        out.extend(p.numpy().astype(np.float16) for p in probs)
    return out


# Folds of val for the stenosis F1 free of tuning on the frames it scores (model cards).
CROSS_VALIDATION_FOLDS = 5


def tune_post_processing(task: str, probabilities: list[np.ndarray], images: list[ArcadeImage]
                         ) -> tuple[dict[str, Any], list[list[Region]], dict[str, Any] | None]:
    """Post-processing tuned on val with the official metric: its thresholds, the regions
    they keep per frame, and the F1 cross-validated over val folds (None with fewer than two
    scored frames: there is nothing to hold out). For syntax, per-class thresholds are kept
    only if they win on held-out folds (`choose_syntax_tuning`)."""
    tuning: SyntaxTuning | StenosisGrid
    regions: list[list[Region]]
    details: dict[str, Any] = {}
    if task == "syntax":
        tuning = syntax_tuning(probabilities, images)
        folds = min(CROSS_VALIDATION_FOLDS, tuning.scored_frames)
        if folds >= 2:
            tuning = choose_syntax_tuning(tuning, folds)
            details["per_class_thresholds"] = tuning.per_class
        syntax_rules, _ = tuning.best()
        regions = [syntax_regions(p, syntax_rules) for p in probabilities]
        thresholds = syntax_rules.to_dict()
    else:
        tuning = stenosis_grid(probabilities, images)
        folds = min(CROSS_VALIDATION_FOLDS, tuning.scored_frames)
        stenosis_rules, _ = tuning.best()
        regions = [stenosis_regions(p, stenosis_rules) for p in probabilities]
        thresholds = stenosis_rules.to_dict()
    if folds < 2:
        return thresholds, regions, None
    return thresholds, regions, {"f1": tuning.cross_validated_f1(folds), "folds": folds,
                                 **details}


def export_best(config: TrainConfig, checkpoint: str | Path | None = None,
                destination: str | Path | None = None) -> dict[str, Any]:
    """Tune post-processing on val (the config's `val_limit` images) with the best checkpoint,
    or the last one when the run stopped before its first evaluation, confirm it with the
    official scorer, and write the fp16 artifact (entry + tuned thresholds in its metadata)."""
    torch.set_num_threads(config.threads)
    entry = training_entry(config)
    model = build_model(entry)
    checkpoint = Path(checkpoint or export_checkpoint(Path(config.out_dir)))
    state = load_model_weights(checkpoint, model)
    # The artifact stores fp16: tune on the weights users will run, not on their fp32 originals.
    model = model.half().float()
    images, frames, _ = read_split(config, "val", config.val_limit)
    probabilities = predict_probabilities(model, entry.preprocess, frames)
    stderr.print(f"tuning post-processing on {len(images)} val images")
    thresholds, regions, cross_validated = tune_post_processing(config.task, probabilities, images)
    truth = coco_of_images(load_arcade(config.data_root, config.task, "val").coco, images)
    predictions = coco_results(
        [{"id": i.image_id, "file_name": i.file_name, "width": i.width, "height": i.height}
         for i in images], regions)
    score = arcade_f1(truth, predictions, config.task)
    interval = bootstrap_ci(list(score.per_image.values()))
    breakdown = arcade_breakdown(truth, predictions, config.task)
    plot_breakdown(breakdown, config.task, Path(config.out_dir) / f"{entry.name}-breakdown.png")
    entry = replace(entry, thresholds=thresholds)
    destination = destination or Path(config.out_dir) / f"{entry.name}.safetensors"
    path = save_artifact(model, entry, destination)
    report = {"model": entry.name, "artifact": str(path), "val_f1": score.f1,
              "val_f1_ci95": [interval.low, interval.high],
              "val_f1_cross_validated": cross_validated, "val_breakdown": breakdown,
              "val_f1_by_epoch": _val_history(Path(config.out_dir)), "thresholds": thresholds,
              "train_images": len(load_arcade(config.data_root, config.task, "train")
                                  .images[:config.train_limit]),
              "val_images": len(images), "checkpoint": checkpoint.name, "epoch": state["epoch"],
              "step": state["global_step"], "config": config.to_dict()}
    (Path(config.out_dir) / "export.json").write_text(json.dumps(report, indent=2))
    path.with_suffix(".md").write_text(model_card(report, entry), encoding="utf-8")
    return report


def coco_of_images(coco: dict[str, Any], images: list[ArcadeImage]) -> dict[str, Any]:
    """`coco` cut down to `images` and their annotations: the ground truth of a val subset,
    so frames left out (val_limit) are not scored as missed."""
    kept = {image.image_id for image in images}
    return {**coco, "images": [i for i in coco["images"] if int(i["id"]) in kept],
            "annotations": [a for a in coco["annotations"] if int(a["image_id"]) in kept]}


def _cross_validated_words(report: dict[str, Any]) -> str:
    cross_validated = report.get("val_f1_cross_validated")
    if cross_validated is None:
        return ""
    return (f"\nWithout that optimism: **{cross_validated['f1']:.4f}**, each val frame scored "
            "under the post-processing tuned\non the other val frames "
            f"({cross_validated['folds']} folds, the whole search repeated per fold)."
            + _per_class_words(cross_validated))


def _per_class_words(cross_validated: dict[str, Any]) -> str:
    """Syntax exports say whether per-class thresholds earned their place (held-out folds)."""
    if "per_class_thresholds" not in cross_validated:
        return ""
    if cross_validated["per_class_thresholds"]:
        return ("\nPer-class thresholds are used: they scored higher on held-out folds than one "
                "threshold\nfor all classes (`choose_syntax_tuning`).")
    return ("\nOne threshold for all classes: per-class thresholds did not score higher on "
            "held-out\nfolds (`choose_syntax_tuning`).")


def model_card(report: dict[str, Any], entry: ModelEntry) -> str:
    """The artifact's card: data and its licence, recipe, command, val F1, when and where."""
    config = report["config"]
    task = config["task"]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    machine = f"{platform.machine()} CPU, {os.cpu_count()} cores ({platform.platform()})"
    return f"""# {entry.name}

{entry.description}

## Data
Trained on ARCADE `{task}` train ({report["train_images"]} images){_extra_words(config)},
model and post-processing selected on ARCADE `{task}` val ({report["val_images"]} images); the
ARCADE test split was never used.

ARCADE: Popov et al., "Dataset for Automatic Region-based Coronary Artery Disease Diagnostics
Using X-Ray Angiography Images", Scientific Data 11:20 (2024); MICCAI 2023 ARCADE challenge.
Licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); these weights are a work
derived from it and carry the same attribution.

## Model
- architecture: `{entry.architecture}`, encoder `{entry.config["encoder"]}` (ImageNet init from
  `{entry.config["encoder_weights"]}`), U-Net decoder with {_decoder_words(entry)} to stride 2
- input: one grey channel, full frame{_zoom_words(entry)},
  (x/255 - {entry.preprocess.mean}) / {entry.preprocess.std}
- labels: {", ".join(entry.labels)}
- weights: fp16 safetensors; the entry (labels, thresholds) is in the file's metadata

## Recipe
{_start_line(config, entry)}
AdamW lr {config["lr"]}, weight decay {config["weight_decay"]}, {config["warmup_steps"]} warmup
steps then cosine over {config["epochs"]} epochs, batch {config["batch_size"]} random
{config["crop_size"]} px crops at full resolution ({config["foreground_focus"]:.0%} of them centred
near a labelled pixel{_mask_words(config)}), {_augment_words(config, entry)},
{_cross_entropy_words(config)} + {_dice_words(config)}{_precision_words(config)}.
Checkpoint `{report["checkpoint"]}`: {report["epoch"]} of {config["epochs"]} epochs done
(step {report["step"]}).

Command (`--resume` continues an interrupted run; the shipped recipes are in `configs/`, see
docs/segmentation.md):

    angioscribe train segment --task {task} --config CONFIG.yaml

with this CONFIG.yaml:

```yaml
{yaml.safe_dump(config, sort_keys=False).strip()}
```

## Post-processing (tuned on val with the official metric)
```json
{json.dumps(report["thresholds"], indent=2)}
```

## Result
Official ARCADE F1 on val (`angioscribe.evaluate.arcade_metric`, thresholds chosen on the same
val set, so slightly optimistic): **{report["val_f1"]:.4f}** (95 % bootstrap CI over val images
{report["val_f1_ci95"][0]:.3f}-{report["val_f1_ci95"][1]:.3f}).{_cross_validated_words(report)}

Val F1 during training (global thresholds only): {_history_line(report["val_f1_by_epoch"])}.
{_breakdown_section(report.get("val_breakdown", []))}
Measured {when} on {machine}.{_unfinished_note(report)}{_earlier_stage(config)}
"""


def _start_line(config: dict[str, Any], entry: ModelEntry) -> str:
    """Where the weights started: a warm start names the artifact it continued from, a transfer
    also which model that was and that its class head was replaced."""
    start = config["init_from"]
    if start is None:
        return "Started from the ImageNet encoder."
    earlier = read_artifact_entry(start) if Path(start).is_file() else None
    if earlier is None or tuple(earlier.labels) == tuple(entry.labels):
        return (f"Warm start from `{start}`, trained weights of the same model (its card is "
                "under *Earlier stage*).")
    shared = len(earlier.labels)
    if tuple(entry.labels[:shared]) == tuple(earlier.labels):
        added = ", ".join(entry.labels[shared:])
        head = (f"every layer and the class head's rows for {', '.join(earlier.labels)} "
                f"carried over, the rows for {added} freshly initialised")
    else:
        head = (f"every layer but the class head ({shared} classes there, "
                f"{len(entry.labels)} here, freshly initialised) carried over")
    return (f"Started from `{start}`, trained `{earlier.name}` weights of the same network: "
            f"{head} (its card is under *Earlier stage*).")


def _extra_words(config: dict[str, Any]) -> str:
    """The frames added to ARCADE train, as the config names them (`extra_train`)."""
    sources = config.get("extra_train") or ()
    named = ", ".join(f"`{s['images']}` labelled by `{s['annotations']}`" for s in sources)
    return f" and the frames of {named}" if named else ""


def _zoom_words(entry: ModelEntry) -> str:
    zoom = entry.preprocess.zoom
    return "" if zoom == 1.0 else f" enlarged {zoom:g}x (bilinear; maps resized back to the frame)"


def _mask_words(config: dict[str, Any]) -> str:
    gap = config.get("lesion_gap", 0)
    centres = config.get("lesion_centres", 0)
    return (f"; {gap} px of background left between touching lesions" if gap else "") + (
        f"; each lesion's centre (its pixels within {centres} px of the middle of its course) "
        "labelled as a class of its own" if centres else "")


def _augment_words(config: dict[str, Any], entry: ModelEntry) -> str:
    flips = bool(entry.config.get("flip_invariant"))
    if not config.get("augment", True):
        return "no augmentation but flips" if flips else "no augmentation"
    return ("X-ray augmentation (rotation, scale, gamma, contrast, brightness, blur, noise"
            f"{', flips' if flips else '; no flips'})")


def _decoder_words(entry: ModelEntry) -> str:
    channels = "/".join(map(str, entry.config.get("decoder_channels", DECODER_CHANNELS)))
    kind = entry.config.get("decoder_conv", DECODER_CONV)
    return f"{kind} 3x3 convolutions ({channels} channels)"


def _precision_words(config: dict[str, Any]) -> str:
    return "; forward passes in bf16 autocast, weights fp32" if config.get("bf16") else ""


def _dice_words(config: dict[str, Any]) -> str:
    if config.get("lesion_dice"):
        return f"soft Dice per annotated lesion (within {LESION_REACH} px of it)"
    return "soft Dice"


def _cross_entropy_words(config: dict[str, Any]) -> str:
    power = config["class_weight_power"]
    if power == 0:
        return "unweighted cross-entropy"
    return f"cross-entropy weighted by inverse class frequency ^ {power}"


def _earlier_stage(config: dict[str, Any]) -> str:
    """The card of the artifact a warm-started run began with, headings one level down, so the
    card of a staged recipe states every stage's data, recipe and command."""
    if config["init_from"] is None:
        return ""
    card = Path(config["init_from"]).with_suffix(".md")
    if not card.is_file():
        return f"\n\n## Earlier stage\nNo card was found next to `{config['init_from']}`."
    text = card.read_text(encoding="utf-8").replace("\n#", "\n##")
    return f"\n\n## Earlier stage\n\n#{text.strip()}"


def _val_history(out_dir: Path) -> dict[int, float]:
    """Epoch -> val F1 of each evaluation the run logged (metrics.jsonl)."""
    path = out_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {int(r["eval"]["epoch"]): float(r["eval"]["score"]) for r in records if "eval" in r}


def _breakdown_section(rows: list[dict[str, Any]]) -> str:
    """The val breakdown (`arcade_breakdown`) as a markdown table, if the export made one."""
    if not rows:
        return ""
    lines = ["", "Where the val F1 is lost (`angioscribe evaluate arcade --breakdown`, columns in "
             "docs/metrics.md):", "", "| " + " | ".join(rows[0]) + " |",
             "|" + " --- |" * len(rows[0])]
    for row in rows:
        cells = ("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
                 for v in row.values())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _history_line(history: dict[Any, float]) -> str:
    if not history:
        return "not logged"
    return ", ".join(f"epoch {epoch} {score:.3f}" for epoch, score in history.items())


def _unfinished_note(report: dict[str, Any]) -> str:
    """Say so when the run has not reached its last epoch (its last evaluation says how far it
    got; the best checkpoint may be an earlier epoch of a finished run)."""
    config = report["config"]
    done = max([report["epoch"], *map(int, report["val_f1_by_epoch"])])
    if done >= config["epochs"]:
        return ""
    return (f"\n\n**Interim weights**: the run stopped after {done} of {config['epochs']} "
            f"epochs. Continue with `angioscribe train segment --task {config['task']} --config "
            "CONFIG.yaml --resume` (the config above), then export again.")

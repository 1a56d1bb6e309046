"""One training loop for every task, on accelerate (CPU here; DDP/mixed precision on GPUs).

A task supplies the model, a dataset whose samples are a pure function of (epoch, index), a loss
and an evaluation. The loop owns the rest: AdamW, warmup + cosine schedule, checkpoints that
resume exactly where a run stopped (model, optimizer, scheduler, epoch and step, RNG, best
score), a JSON-lines metrics log and progress output.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from angioscribe.errors import InputError
from angioscribe.progress import stderr
from angioscribe.train.config import TrainConfig

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_LOG = "metrics.jsonl"


class EpochDataset(Protocol):
    """A dataset whose random augmentation is seeded by the epoch, for exact resumes."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class TrainingTask(Protocol):
    model: nn.Module
    train_set: EpochDataset

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The batch's loss. With `TrainConfig.bf16` it runs under CPU bf16 autocast, so a task
        takes the model's outputs `.float()` before its loss arithmetic."""
        ...

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics; "score" (higher is better) picks the best checkpoint."""
        ...


@dataclass
class TrainState:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


def fit(task: TrainingTask, config: TrainConfig, resume: bool = False) -> TrainState:
    """Train `task.model` per `config`; with `resume`, continue from `out_dir/last.pt`."""
    torch.set_num_threads(config.threads)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    on_gpu = torch.cuda.is_available()
    accelerator = Accelerator(cpu=not on_gpu, mixed_precision="bf16" if on_gpu else "no")
    _seed_everything(config.seed)
    optimizer = torch.optim.AdamW(
        task.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps_per_epoch = len(task.train_set) // config.batch_size
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_cosine(config.warmup_steps, config.epochs * steps_per_epoch)
    )
    state = TrainState()
    if resume and (out_dir / LAST_CHECKPOINT).is_file():
        state = _load_checkpoint(out_dir / LAST_CHECKPOINT, task.model, optimizer, scheduler)
        accelerator.print(f"resumed at epoch {state.epoch} step {state.step_in_epoch}")
    model, optimizer = accelerator.prepare(task.model, optimizer)
    last_save = time.monotonic()
    while state.epoch < config.epochs and not _step_budget_spent(state, config):
        loader = accelerator.prepare_data_loader(_epoch_loader(task.train_set, config, state))
        bar = tqdm(loader, desc=f"epoch {state.epoch}", mininterval=30, dynamic_ncols=True,
                   initial=state.step_in_epoch, total=steps_per_epoch,
                   disable=not accelerator.is_main_process)
        running = []
        model.train()
        for batch in bar:
            with _cpu_bf16(config.bf16 and not on_gpu):
                loss = task.loss(model, batch)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step_in_epoch += 1
            state.global_step += 1
            running.append(loss.item())
            if state.global_step % config.log_every_steps == 0:
                _log(out_dir, accelerator, {"step": state.global_step, "epoch": state.epoch,
                                            "loss": float(np.mean(running)),
                                            "lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{np.mean(running):.4f}")
                running = []
            if time.monotonic() - last_save > config.checkpoint_minutes * 60:
                _save_checkpoint(out_dir / LAST_CHECKPOINT, accelerator, model, optimizer,
                                 scheduler, state, config)
                last_save = time.monotonic()
            if _step_budget_spent(state, config):
                break
        if state.step_in_epoch >= steps_per_epoch:
            state.epoch += 1
            state.step_in_epoch = 0
            if state.epoch % config.eval_every_epochs == 0 or state.epoch == config.epochs:
                _evaluate(task, accelerator, model, optimizer, scheduler, state, config, out_dir)
        _save_checkpoint(out_dir / LAST_CHECKPOINT, accelerator, model, optimizer, scheduler,
                         state, config)
        last_save = time.monotonic()
    return state


def _cpu_bf16(enabled: bool) -> torch.autocast:
    """bf16 autocast for a CPU training step (`TrainConfig.bf16`). Not accelerate's
    `mixed_precision`: that is fixed once per process, and one process may train several
    models (tests, notebooks)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def _step_budget_spent(state: TrainState, config: TrainConfig) -> bool:
    return config.max_steps is not None and state.global_step >= config.max_steps


def _epoch_loader(dataset: EpochDataset, config: TrainConfig, state: TrainState) -> DataLoader:
    """This epoch's remaining batches: a permutation fixed by (seed, epoch), minus those done."""
    dataset.set_epoch(state.epoch)
    order = np.random.default_rng([config.seed, state.epoch]).permutation(len(dataset))
    remaining = order[state.step_in_epoch * config.batch_size :].tolist()
    return DataLoader(Subset(dataset, remaining), batch_size=config.batch_size, drop_last=True)


def _evaluate(task: TrainingTask, accelerator: Accelerator, model: nn.Module,
              optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainState,
              config: TrainConfig, out_dir: Path) -> None:
    model.eval()
    with torch.inference_mode():
        metrics = task.evaluate(accelerator.unwrap_model(model))
    record = {"epoch": state.epoch, "step": state.global_step, **metrics}
    state.history.append(record)
    if metrics["score"] > state.best_score:
        state.best_score, state.best_epoch = metrics["score"], state.epoch
        _save_checkpoint(out_dir / BEST_CHECKPOINT, accelerator, model, optimizer, scheduler,
                         state, config)
    _log(out_dir, accelerator, {"eval": record, "best_score": state.best_score})
    accelerator.print(f"epoch {state.epoch}: {metrics} (best {state.best_score:.4f})")


def _warmup_cosine(warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _log(out_dir: Path, accelerator: Accelerator, record: dict[str, Any]) -> None:
    if accelerator.is_main_process:
        with open(out_dir / METRICS_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps({"time": time.time(), **record}) + "\n")


def _save_checkpoint(path: Path, accelerator: Accelerator, model: nn.Module,
                     optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainState,
                     config: TrainConfig) -> None:
    """Write atomically (temp file + rename): a run killed mid-save keeps its last checkpoint."""
    if not accelerator.is_main_process:
        return
    payload = {
        "model": accelerator.unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": state.__dict__,
        "config": config.to_dict(),
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                "torch": torch.get_rng_state()},
    }
    temporary = path.with_suffix(".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def _load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Any) -> TrainState:
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    random.setstate(payload["rng"]["python"])
    np.random.set_state(payload["rng"]["numpy"])
    torch.set_rng_state(payload["rng"]["torch"])
    return TrainState(**payload["state"])


def load_model_weights(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Model weights from a checkpoint (e.g. best.pt); returns the checkpoint's state record."""
    if not Path(path).is_file():
        raise InputError(path, "no such checkpoint file")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    return payload["state"]


def export_checkpoint(out_dir: Path) -> Path:
    """best.pt, else last.pt: a run whose step budget ran out before its first evaluation
    has no best checkpoint, and its last weights are still worth exporting."""
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        if (out_dir / name).is_file():
            if name == LAST_CHECKPOINT:
                stderr.print(f"no {BEST_CHECKPOINT} in {out_dir} (no evaluation yet): "
                             f"exporting {LAST_CHECKPOINT}")
            return out_dir / name
    raise InputError(out_dir, f"no checkpoint to export ({BEST_CHECKPOINT} or "
                              f"{LAST_CHECKPOINT}); train first")

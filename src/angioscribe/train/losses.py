"""Losses for thin, imbalanced structures: weighted cross-entropy plus soft Dice.

Vessels cover ~5 % of an angiogram and single SYNTAX segments well under 1 %, so plain
cross-entropy settles for background. Class weights lift rare classes pixel-wise; Dice, computed
per class over the batch, rewards overlap regardless of a class's size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def class_weights(
    pixel_counts: np.ndarray, power: float = 0.5, max_weight: float = 20.0
) -> torch.Tensor:
    """Inverse-frequency weights (frequency ** -power), scaled so the average pixel weighs 1.

    power 0.5 (inverse square root) is the usual compromise: full inverse frequency makes
    the rarest segments dominate and the loss noisy.
    """
    frequency = np.maximum(pixel_counts.astype(np.float64), 1.0) / max(pixel_counts.sum(), 1)
    weights = frequency**-power
    weights = weights / float((weights * frequency).sum())
    return torch.tensor(np.minimum(weights, max_weight), dtype=torch.float32)


class DiceCELoss(nn.Module):
    """Weighted cross-entropy + (1 - soft Dice) averaged over foreground classes in the batch.

    Classes absent from the batch's target are left out of the Dice mean: their Dice would be
    0 or 1 by accident, and the cross-entropy already punishes predicting them.

    With `lesion_reach` the target numbers lesions (`ArcadeImage.mask(..., numbered=True)`):
    the cross-entropy is lesion vs background and the Dice is scored per lesion
    (`lesion_dice_loss`), as the ARCADE stenosis metric scores them.
    """

    def __init__(self, weights: torch.Tensor | None = None, dice_weight: float = 1.0,
                 lesion_reach: int | None = None) -> None:
        super().__init__()
        self.register_buffer("weights", weights if weights is not None else torch.empty(0))
        self.dice_weight, self.lesion_reach = dice_weight, lesion_reach

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.weights if self.weights.numel() else None
        classes = target if self.lesion_reach is None else (target > 0).long()
        cross_entropy = F.cross_entropy(logits.float(), classes, weight=weight)
        if self.dice_weight == 0:
            return cross_entropy
        dice = (soft_dice_loss(logits, target) if self.lesion_reach is None
                else lesion_dice_loss(logits, target, self.lesion_reach))
        return cross_entropy + self.dice_weight * dice


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over foreground classes present in `target` (class 0 = background).

    Per-class sums come from a gather and bincounts instead of a one-hot tensor, which would
    be classes x pixels large (26 x 8 x 288 x 288 for a SYNTAX batch).
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)
    flat_target = target.reshape(-1)
    at_target = probs.gather(1, target[:, None]).reshape(-1)
    intersection = torch.zeros(num_classes, device=logits.device).index_add_(
        0, flat_target, at_target
    )
    truth = torch.bincount(flat_target, minlength=num_classes).float()
    dice = (2 * intersection + eps) / (probs.sum(dim=(0, 2, 3)) + truth + eps)
    present = truth > 0
    present[0] = False
    if not present.any():
        return logits.sum() * 0.0
    return 1.0 - dice[present].mean()


def lesion_dice_loss(logits: torch.Tensor, target: torch.Tensor, reach: int,
                     eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the numbered lesions of each image (0 if there are none).

    The metric scores every lesion by its own Dice, so a short lesion counts as much as a long
    one; a Dice over the batch is ruled by the long ones. Each lesion is scored against the
    predicted probability within `reach` px of it: paint along the vessel beside a lesion is its
    false positive, as in the metric's polygon F1; a neighbouring lesion's pixels are left out
    of that reach, since painting them is right.
    """
    pairs = [(image, number) for image, numbers in enumerate(target)
             for number in numbers.unique().tolist() if number > 0]
    if not pairs:
        return logits.sum() * 0.0
    images = torch.tensor([image for image, _ in pairs], device=target.device)
    numbers = torch.tensor([number for _, number in pairs], device=target.device)
    labels = target[images]  # (lesions, H, W): each lesion's image
    lesions = labels == numbers[:, None, None]
    around = dilate(lesions.float(), reach) * ((labels == 0) | lesions)
    predicted = logits.float().softmax(dim=1)[images, 1]
    overlap = (predicted * lesions).sum(dim=(1, 2))
    dice = (2 * overlap + eps) / ((predicted * around).sum(dim=(1, 2))
                                  + lesions.sum(dim=(1, 2)) + eps)
    return 1.0 - dice.mean()


def dilate(masks: torch.Tensor, reach: int) -> torch.Tensor:
    """(N, H, W) 0/1 masks grown by `reach` px (a square), as two 1-D max-pools: the same result
    as one (2 reach + 1)^2 pool at a fraction of its cost on a CPU."""
    size = 2 * reach + 1
    rows = F.max_pool2d(masks[:, None], (size, 1), stride=1, padding=(reach, 0))
    return F.max_pool2d(rows, (1, size), stride=1, padding=(0, reach))[:, 0]

"""Contrastive video-text losses (CLIP, SigLIP) with negatives from every process.

A batch holds videos and report texts; `match[i, j]` says video i shows what text j says (left
videos match their study's left-territory text, right videos the right text). Several videos of
one study share a text, so the CLIP loss takes soft targets: a text's probability spreads over
all its videos. Under DDP (accelerate launches it; gloo on CPU) the embeddings of every process
are gathered with their gradients, so the negatives grow with the number of processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_across_processes(x: torch.Tensor) -> torch.Tensor:
    """`x` of every process concatenated along dim 0; this process's rows keep their gradient."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


def clip_loss(video: torch.Tensor, text: torch.Tensor, match: torch.Tensor,
              logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over normalised embeddings with a learnable temperature
    (`logit_scale` = log 1/T), soft targets where several videos share a text."""
    logits = logit_scale.exp().clamp(max=100) * F.normalize(video, dim=-1) @ \
        F.normalize(text, dim=-1).T
    targets = match.float()
    video_to_text = -(targets / targets.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1)
    text_to_video = -(targets.T / targets.T.sum(1, keepdim=True)
                      * logits.T.log_softmax(1)).sum(1)
    return (video_to_text.mean() + text_to_video.mean()) / 2


def siglip_loss(video: torch.Tensor, text: torch.Tensor, match: torch.Tensor,
                logit_scale: torch.Tensor, logit_bias: torch.Tensor) -> torch.Tensor:
    """Sigmoid loss: each (video, text) pair is its own binary match question."""
    logits = logit_scale.exp() * F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T \
        + logit_bias
    signs = 2 * match.float() - 1
    return -F.logsigmoid(signs * logits).sum() / len(video)

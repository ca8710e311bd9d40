"""Frozen, validated configuration of a cross-encoder (architecture) and of one training call."""
from __future__ import annotations

from dataclasses import dataclass

from training.config_dict import ConfigDict
from training.prec.config import NEWS_VIEWS

N_QUALITY = 5  # judge grades 0..4
BACKBONES = ("prec", "scratch", "pretrained")
POOLINGS = ("cls", "mean")
#: tokens per pair (both sides together) when ``max_len`` is not given
DEFAULT_MAX_LEN = {"prec": 64, "scratch": 40, "pretrained": 128}
#: news fields per side when ``views`` is not given. Every backbone reads the ``source`` view (category and
#: publisher), the evidence beside the text that the judge is shown too, so the quality teachers can learn what
#: the judge's labels rest on; the small "scratch" student reads no abstract (its 40 tokens hold two sources and
#: whole titles; with abstracts too, fair budgets would cut each title to ~6 tokens)
DEFAULT_VIEWS = {"prec": ("source", "title", "abstract"), "scratch": ("source", "title"),
                 "pretrained": ("source", "title", "abstract")}


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}={value} must be > 0")


@dataclass(frozen=True)
class CrossEncoderConfig(ConfigDict):
    """Architecture and input layout of a (trigger, candidate) cross-encoder.

    ``backbone``:
      * ``"prec"``: weights and tokenizer of a PREC news encoder directory (our domain-adapted backbone)
        plus a zero-initialised trigger/candidate segment embedding;
      * ``"scratch"``: a small randomly initialised BERT (``hidden_size`` ... ``intermediate_size``) using the
        PREC directory's tokenizer (the demo-size student);
      * ``"pretrained"``: a local Hugging Face directory (``pretrained_dir``; default: the bundled MiniLM)
        loaded with AutoModel/AutoTokenizer, pairs built with the tokenizer's own pair template.
    ``max_len``: tokens per pair, both sides and special tokens together (None: ``DEFAULT_MAX_LEN``); when the
    pair is too long the longer side is cut first (fair budgets), then the longer views within a side.
    ``views``: news fields that make up each side, in order (None: ``DEFAULT_VIEWS``).
    The scratch sizes are ignored by the other backbones.
    """

    backbone: str = "prec"
    pretrained_dir: str | None = None
    hidden_size: int = 64
    num_layers: int = 1
    num_heads: int = 2
    intermediate_size: int = 128
    max_len: int | None = None
    views: tuple[str, ...] | None = None
    pooling: str = "mean"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone={self.backbone!r}; expected one of {BACKBONES}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}; expected one of {POOLINGS}")
        if self.views is None:
            object.__setattr__(self, "views", DEFAULT_VIEWS[self.backbone])
        if isinstance(self.views, str) or not self.views:
            raise ValueError(f"views must be a non-empty tuple of view names, got {self.views!r}")
        object.__setattr__(self, "views", tuple(self.views))
        for view in self.views:
            if view not in NEWS_VIEWS:
                raise ValueError(f"view={view!r}; expected one of {NEWS_VIEWS}")
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"duplicate views: {self.views}")
        if self.max_len is None:
            object.__setattr__(self, "max_len", DEFAULT_MAX_LEN[self.backbone])
        assert self.max_len is not None
        if self.backbone != "pretrained" and self.max_len < 2 * len(self.views) + 3:
            raise ValueError(f"max_len={self.max_len} leaves no room for text with {len(self.views)} views per side")
        if self.max_len < 4:
            raise ValueError(f"max_len={self.max_len} is too small for a pair")
        _positive(hidden_size=self.hidden_size, num_layers=self.num_layers, num_heads=self.num_heads,
                  intermediate_size=self.intermediate_size)
        if self.backbone == "scratch" and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must lie in [0, 1)")
        if self.pretrained_dir is not None and self.backbone != "pretrained":
            raise ValueError("pretrained_dir is only used with backbone='pretrained'")


@dataclass(frozen=True)
class TrainConfig(ConfigDict):
    """One training call: AdamW with linear warmup then linear decay to zero, gradient clipping.

    ``max_steps`` caps the optimiser steps (None: ``epochs`` full passes); ``warmup_fraction`` of the steps warm
    up; ``torch_threads`` sets ``torch.set_num_threads`` for the call only; ``seed`` seeds torch (dropout),
    numpy and the shuffling, so a call is deterministic given the starting weights. ``patience``: with an
    early-stopping set, stop after this many epochs in a row without a lower held-out loss (the best epoch's
    weights are kept); ignored without one.
    """

    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.01
    epochs: int = 1
    max_steps: int | None = None
    warmup_fraction: float = 0.1
    seed: int = 42
    torch_threads: int | None = None
    progress_bar: bool = True
    grad_clip: float | None = 1.0
    patience: int = 1

    def __post_init__(self) -> None:
        _positive(batch_size=self.batch_size, lr=self.lr, epochs=self.epochs, patience=self.patience)
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps} must be >= 1 or None")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction={self.warmup_fraction} must lie in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay} must be >= 0")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads={self.torch_threads} must be >= 1 or None")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be > 0 or None")

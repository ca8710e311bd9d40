"""On-policy distillation of a teacher policy into a smaller student with the same tokenizer (plain torch).

Each step the student samples completions for a few prompts; the teacher scores the student's tokens; the loss
is the generalised Jensen-Shannon divergence of the two next-token distributions (full vocabulary) at every
completion position up to and including the first eos, averaged over those tokens. ``beta`` follows TRL's GKD
(``generalized_jsd_loss``): 0 is the forward KL(teacher || student), 1 the reverse KL(student || teacher) (the
default: mode-seeking, the usual on-policy objective), in between the JSD of the ``beta``-mixture. A student
whose output layer is restricted (``training.query_lists.output_vocabulary``) puts no mass outside its
vocabulary: every ``beta`` > 0 stays finite.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from training.config_dict import ConfigDict
from training.query_lists.sampling import list_prompts
from training.torch_threads import torch_threads

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from training.slm.causal_lm import CausalLM


@dataclass(frozen=True)
class DistillSettings(ConfigDict):
    """On-policy distillation settings; every parameter of the student is trained (Adam)."""

    steps: int = 200
    prompts_per_step: int = 8
    max_new_tokens: int = 64
    learning_rate: float = 1e-4
    beta: float = 1.0
    temperature: float = 1.0   # the student's sampling temperature (the divergence is at temperature 1)
    seed: int = 1
    torch_threads: int = 2

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"DistillSettings.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"DistillSettings.beta must be in [0, 1] (0 forward KL, 1 reverse KL), got {self.beta}")
        if self.learning_rate <= 0 or self.temperature <= 0 or self.torch_threads < 0:
            raise ValueError("DistillSettings needs learning_rate > 0, temperature > 0 and torch_threads >= 0")


@dataclass
class DistillResult:
    """One :func:`distill_on_policy` run: the trained student (eval mode) and the loss of every step."""

    model: Any
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def token_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                     beta: float) -> torch.Tensor:
    """Mean over the ``mask``-ed positions of the generalised JSD (see the module docstring) of two
    ``(batch, length, vocab)`` logit tensors."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: distillation needs one tokenizer and vocabulary")
    student = F.log_softmax(student_logits.float(), dim=-1)
    teacher = F.log_softmax(teacher_logits.float(), dim=-1)

    def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:   # KL(p || q) per position, from log-probs
        return (p.exp() * (p - q)).sum(-1)

    if beta == 0:
        per_token = kl(teacher, student)
    elif beta == 1:
        per_token = kl(student, teacher)
    else:
        mixture = torch.logsumexp(torch.stack([student + math.log1p(-beta), teacher + math.log(beta)]), dim=0)
        per_token = beta * kl(teacher, mixture) + (1 - beta) * kl(student, mixture)
    weights = mask.to(per_token.dtype)
    return (per_token * weights).sum() / weights.sum().clamp(min=1.0)


@dataclass(frozen=True)
class Rollout:
    """Sampled sequences: ``ids`` (prompt left-padded, then the completion), ``attention_mask``, ``position_ids``
    and ``completion_mask`` (the completion tokens up to and including the first eos); prompts are ``width`` wide."""

    ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    completion_mask: torch.Tensor
    width: int


def sample_rollout(model: CausalLM, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                   max_new_tokens: int, temperature: float = 1.0) -> Rollout:
    """One completion per chat prompt, sampled from ``model`` (the caller seeds torch)."""
    batch = tokenizer(list(prompts), add_special_tokens=False, padding=True, padding_side="left",
                      return_tensors="pt")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        ids = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], do_sample=True,
                             temperature=temperature, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                             pad_token_id=pad_id, eos_token_id=tokenizer.eos_token_id)
    ids = ids.clone()   # out of inference mode, so autograd may use it
    width = batch["input_ids"].shape[1]
    completion = ids[:, width:]
    is_eos = completion == tokenizer.eos_token_id
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0   # strictly after the first eos
    completion_mask = (~after_eos).long()
    attention_mask = torch.cat([batch["attention_mask"], completion_mask], dim=1)
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    return Rollout(ids, attention_mask, position_ids, completion_mask, width)


def rollout_logits(model: CausalLM, rollout: Rollout) -> torch.Tensor:
    """``model``'s next-token logits at the completion's positions, ``(batch, completion length, vocab)``."""
    logits = model(input_ids=rollout.ids, attention_mask=rollout.attention_mask,
                   position_ids=rollout.position_ids, use_cache=False).logits
    return logits[:, rollout.width - 1: -1]


def rollout_divergence(student: CausalLM, teacher: CausalLM, rollout: Rollout, beta: float) -> torch.Tensor:
    """:func:`token_divergence` of the two models on ``rollout`` (gradients flow into the student only)."""
    with torch.no_grad():
        teacher_logits = rollout_logits(teacher, rollout)
    return token_divergence(rollout_logits(student, rollout), teacher_logits, rollout.completion_mask, beta)


def divergence(student: CausalLM, teacher: CausalLM, tokenizer: PreTrainedTokenizerBase, messages: Sequence[str],
               beta: float = 1.0, max_new_tokens: int = 64, seed: int = 0, batch_size: int = 8) -> float:
    """Mean per-token divergence (``beta`` as in the module docstring; 1: reverse KL) on the student's own
    seeded samples for ``messages``: the held-out check of a distillation."""
    prompts = list_prompts(tokenizer, messages)
    total = tokens = 0.0
    student.eval()
    teacher.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for start in range(0, len(prompts), batch_size):
            rollout = sample_rollout(student, tokenizer, prompts[start: start + batch_size], max_new_tokens)
            n = float(rollout.completion_mask.sum())
            total += float(rollout_divergence(student, teacher, rollout, beta)) * n
            tokens += n
    return total / tokens if tokens else float("nan")


def distill_on_policy(student: CausalLM, teacher: CausalLM, tokenizer: PreTrainedTokenizerBase,
                      messages: Sequence[str], settings: DistillSettings | None = None,
                      progress: bool = True) -> DistillResult:
    """Train ``student`` (in place) towards ``teacher`` on its own samples for the ``user``-task ``messages``
    (seeded shuffles, ``prompts_per_step`` per step); the global torch generator is left as it was."""
    settings = settings or DistillSettings()
    if not messages:
        raise ValueError("distill_on_policy needs at least one message")
    from training.query_lists.output_vocabulary import output_vocabulary

    if settings.beta == 0 and output_vocabulary(student) is not None:
        raise ValueError("the student's output layer is restricted (training.query_lists.output_vocabulary): the "
                         "forward KL (beta 0) is infinite wherever the teacher puts mass outside its vocabulary; "
                         "use beta > 0")
    prompts = list_prompts(tokenizer, messages)
    teacher.eval()
    for p in student.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(student.parameters(), lr=settings.learning_rate)
    result = DistillResult(model=student)
    start = time.perf_counter()
    with torch_threads(settings.torch_threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        order: list[int] = []
        for _ in tqdm(range(settings.steps), desc="on-policy distillation", unit="step", disable=not progress):
            while len(order) < settings.prompts_per_step:
                order += torch.randperm(len(prompts)).tolist()
            rows, order = order[: settings.prompts_per_step], order[settings.prompts_per_step:]
            student.eval()
            rollout = sample_rollout(student, tokenizer, [prompts[r] for r in rows], settings.max_new_tokens,
                                     settings.temperature)
            student.train()
            loss = rollout_divergence(student, teacher, rollout, settings.beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.losses.append(float(loss.detach()))
    student.eval()
    result.seconds = time.perf_counter() - start
    return result

"""Interest query lists (issue 24, docs/query_lists_protocol.md): a small LM writes a list of N news search
queries for a user from their signals and reading history; the list retrieves news through Q'.

* :mod:`~training.query_lists.prompt_rows`: per (user, day) prompts and the next day's clicks, without leakage;
* :mod:`~training.query_lists.query_list`: a list's settings, its parse, the round-robin union;
* :mod:`~training.query_lists.warm_start`: the warm start's SFT targets, lists of the next day's clicks' key phrases;
* :mod:`~training.query_lists.rewards`: retrieval, coverage, format and quality rewards, and their weights;
* :mod:`~training.query_lists.trl_rewards`: the rewards as TRL reward functions sharing one retrieval;
* :mod:`~training.query_lists.policy`: the warm start merged for GRPO; a saved GRPO policy loaded back;
* :mod:`~training.query_lists.grpo`: GRPO of a new LoRA on the warm start (TRL, CPU), the number of steps chosen
  on the selection day;
* :mod:`~training.query_lists.sampling`: greedy and sampled lists, merged, recall@K per number of lists;
* :mod:`~training.query_lists.distill`: on-policy distillation of the policy into a smaller student.

The stages, on the days of docs/query_lists_protocol.md: ``user_day_rows`` of the train days ->
``warm_start_targets`` -> ``training.slm.lora_sft.train_lora`` (``task="user"``) and ``save_adapter`` ->
``merged_copy`` (or ``load_generator_model``) -> ``train_grpo`` with ``select`` scoring the selection day's rows
-> ``save_adapter(..., base_adapter_dir=<warm start>)`` -> ``load_policy`` for generation.
Importing the package loads neither transformers, peft nor TRL (policy, grpo, sampling and distill use them).
"""
from __future__ import annotations

from training.query_lists.prompt_rows import SIGNAL_COLUMNS, user_day_rows
from training.query_lists.query_list import QueryList, QueryListSpec, parse_list, round_robin
from training.query_lists.rewards import (
    REWARD_NAMES,
    RewardWeights,
    coverage_reward,
    format_reward,
    list_union,
    quality_reward,
    retrieval_reward,
)
from training.query_lists.trl_rewards import ListRetrievals, reward_functions
from training.query_lists.warm_start import WarmStartTargets, warm_start_targets

__all__ = [
    "REWARD_NAMES", "SIGNAL_COLUMNS", "ListRetrievals", "QueryList", "QueryListSpec", "RewardWeights",
    "WarmStartTargets", "coverage_reward", "format_reward", "list_union", "parse_list", "quality_reward",
    "retrieval_reward", "reward_functions", "round_robin", "user_day_rows", "warm_start_targets",
]

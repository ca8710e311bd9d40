"""Inference-time sampling of query lists: a user's greedy list, n sampled lists merged, and recall@K of each.

n lists are merged by the round-robin union of their queries (every list's first query, then every second one,
...), so a merged list keeps each list's best queries first. The lists of n = 1, 2, 4, 8 are the first n of one
seeded draw of max(n) lists per user: the merged queries only grow with n.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import torch

from training.query_lists.query_list import QueryListSpec, parse_list, round_robin
from training.query_lists.rewards import list_union, retrieval_reward
from training.slm.prompts import chat_prompt
from training.slm.query_generation import GenerationConfig, generate_texts
from training.torch_threads import torch_threads

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from training.query_lists.trl_rewards import Retriever
    from training.slm.causal_lm import CausalLM

#: The numbers of sampled lists compared per user (protocol of issue 24).
SAMPLED_LISTS = (1, 2, 4, 8)


def list_prompts(tokenizer: PreTrainedTokenizerBase, messages: Sequence[str]) -> list[str]:
    """The ``user`` task's chat prompts of ``messages``."""
    return [chat_prompt(tokenizer, str(m), task="user") for m in messages]


def greedy_lists(model: CausalLM, tokenizer: PreTrainedTokenizerBase, messages: Sequence[str],
                 spec: QueryListSpec | None = None, generation: GenerationConfig | None = None) -> list[list[str]]:
    """One greedy list per message (``generate_texts``), parsed with :func:`parse_list`."""
    spec = spec or QueryListSpec()
    texts, _ = generate_texts(model, tokenizer, list_prompts(tokenizer, messages), generation)
    return [list(parse_list(t, spec).queries) for t in texts]


def sampled_lists(model: CausalLM, tokenizer: PreTrainedTokenizerBase, messages: Sequence[str], n: int,
                  spec: QueryListSpec | None = None, temperature: float = 1.0, max_new_tokens: int = 64,
                  batch_size: int = 8, seed: int = 0, threads: int = 2) -> list[list[list[str]]]:
    """``n`` lists per message sampled at ``temperature`` (no top-k / top-p cut), ``batch_size`` messages per
    ``generate`` call; the same seed gives the same lists (the global torch generator is left as it was)."""
    if n < 1 or batch_size < 1 or max_new_tokens < 1 or temperature <= 0:
        raise ValueError(f"sampled_lists needs n, batch_size, max_new_tokens >= 1 and temperature > 0; got n={n}, "
                         f"batch_size={batch_size}, max_new_tokens={max_new_tokens}, temperature={temperature}")
    spec = spec or QueryListSpec()
    prompts = list_prompts(tokenizer, messages)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[list[list[str]]] = []
    with torch_threads(threads), torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[start: start + batch_size], add_special_tokens=False, padding=True,
                              padding_side="left", return_tensors="pt")
            tokens = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                    do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                    num_return_sequences=n, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                                    eos_token_id=tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(tokens[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for row in range(0, len(texts), n):   # generate repeats each prompt n times, consecutively
                out.append([list(parse_list(t, spec).queries) for t in texts[row: row + n]])
    return out


def merge_lists(lists: Sequence[Sequence[str]]) -> list[str]:
    """The round-robin union of several lists' queries."""
    return round_robin(lists)


def sampling_recall(model: CausalLM, tokenizer: PreTrainedTokenizerBase, rows: pd.DataFrame, retrieve: Retriever,
                    spec: QueryListSpec | None = None, ns: Sequence[int] = SAMPLED_LISTS, temperature: float = 1.0,
                    seed: int = 0, generation: GenerationConfig | None = None,
                    greedy: Sequence[Sequence[str]] | None = None) -> pd.DataFrame:
    """Per row (``message``, ``clicks``) and arm (``greedy``, ``n=<n>``): the merged list's query count, the news
    it retrieves and recall@``spec.k`` of the row's clicks. All distinct queries are retrieved in one call.
    ``greedy``: the rows' greedy lists when the caller has them already (else generated here)."""
    missing = [c for c in ("message", "clicks") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}; they have {list(rows.columns)}")
    if not ns or min(ns) < 1:
        raise ValueError(f"ns must be numbers of lists >= 1, got {list(ns)}")
    spec = spec or QueryListSpec()
    generation = generation or GenerationConfig()
    messages = rows["message"].astype(str).tolist()
    if greedy is not None and len(greedy) != len(messages):
        raise ValueError(f"greedy has {len(greedy)} lists for {len(messages)} rows")
    arms: dict[str, list[list[str]]] = {"greedy": [list(q) for q in greedy] if greedy is not None
                                        else greedy_lists(model, tokenizer, messages, spec, generation)}
    drawn = sampled_lists(model, tokenizer, messages, max(ns), spec, temperature, generation.max_new_tokens,
                          generation.batch_size, seed, generation.torch_threads)
    for n in sorted(set(ns)):
        arms[f"n={n}"] = [merge_lists(lists[:n]) for lists in drawn]
    distinct = list(dict.fromkeys(q for merged in arms.values() for queries in merged for q in queries))
    results = retrieve(distinct) if distinct else []
    if len(results) != len(distinct):
        raise ValueError(f"retrieve returned {len(results)} result lists for {len(distinct)} queries")
    found = dict(zip(distinct, results))
    records = []
    for arm, merged in arms.items():
        for row, (queries, clicks) in enumerate(zip(merged, rows["clicks"])):
            union = list_union([found[q] for q in queries], spec)
            records.append({"row": row, "arm": arm, "n_lists": 0 if arm == "greedy" else int(arm[2:]),
                            "n_queries": len(queries), "n_retrieved": len(union),
                            "recall": retrieval_reward(union, clicks, spec.k)})
    return pd.DataFrame(records)


def sampling_table(per_row: pd.DataFrame) -> pd.DataFrame:
    """One row per arm of :func:`sampling_recall` (greedy first, then n ascending): users, mean recall@K, mean
    merged queries and mean news retrieved."""
    table = (per_row.groupby(["arm", "n_lists"], sort=False)
             .agg(users=("row", "size"), recall_at_k=("recall", "mean"), queries=("n_queries", "mean"),
                  retrieved=("n_retrieved", "mean"))
             .reset_index())
    return table.sort_values("n_lists", kind="stable").reset_index(drop=True)

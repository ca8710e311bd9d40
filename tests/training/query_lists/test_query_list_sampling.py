"""Greedy and sampled lists of a tiny LM fine-tuned to write lists, merged, and recall@K per number of lists."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from builders.slm import tiny_causal_lm

from training.query_lists.query_list import QueryListSpec
from training.query_lists.sampling import (
    greedy_lists,
    merge_lists,
    sampled_lists,
    sampling_recall,
    sampling_table,
)
from training.slm.lora_sft import LoraSftConfig, train_lora
from training.slm.prompts import format_target, user_prompt
from training.slm.query_generation import GenerationConfig

SPEC = QueryListSpec(n_queries=3, per_query=3, k=4)
GENERATION = GenerationConfig(max_new_tokens=32, batch_size=4, torch_threads=1)
USERS = {
    "Lakers win against the playoffs": ["nba lakers score", "nba playoffs schedule", "lakers trade rumors"],
    "A storm warn about heavy snow": ["heavy snow forecast", "winter storm warning", "storm power outages"],
    "Stocks rise after interest rates": ["stock market rally", "interest rates today", "mortgage rates rise"],
    "Nasa prepare for space launch": ["nasa moon mission", "space launch rocket", "rocket launch delayed"],
}
ROWS = pd.DataFrame({"message": [user_prompt([title]) for title in USERS],
                     "clicks": [["N1", "N2"], ["N4", "N6"], ["N8", "N9"], ["N10", "N12"]]})


@pytest.fixture(scope="module")
def list_writer(tmp_path_factory):
    """A tiny LM taught to write three queries per user (fully fine-tuned: LoRA on so small a model learns too
    little in a few steps to sample parseable lists at temperature 1)."""
    directory = tiny_causal_lm(tmp_path_factory.mktemp("list_writer"))
    config = LoraSftConfig(lr=3e-3, max_steps=60, batch_size=4, max_len=256, torch_threads=1, task="user",
                           full_finetune=True)   # max_len: the whole chat prompt, as generation sees it
    result = train_lora(directory, ROWS["message"].tolist(), [format_target(q) for q in USERS.values()], config,
                        progress=False)
    return result.model, result.tokenizer


def test_sampled_lists_are_seeded_and_leave_the_global_generator_alone(list_writer):
    model, tokenizer = list_writer
    state = torch.get_rng_state()
    first = sampled_lists(model, tokenizer, ROWS["message"], 3, SPEC, max_new_tokens=32, batch_size=3, threads=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert [len(lists) for lists in first] == [3, 3, 3, 3]
    assert first == sampled_lists(model, tokenizer, ROWS["message"], 3, SPEC, max_new_tokens=32, batch_size=3,
                                  threads=1)
    other = sampled_lists(model, tokenizer, ROWS["message"], 3, SPEC, max_new_tokens=32, batch_size=3, seed=5,
                          threads=1)
    assert other != first
    with pytest.raises(ValueError, match="temperature > 0"):
        sampled_lists(model, tokenizer, ROWS["message"], 2, SPEC, temperature=0.0)


def test_greedy_lists_follow_the_training_targets(list_writer):
    model, tokenizer = list_writer
    lists = greedy_lists(model, tokenizer, ROWS["message"], SPEC, GENERATION)
    hits = sum(q in targets for queries, targets in zip(lists, USERS.values()) for q in queries)
    assert hits >= 6, lists   # of 12 target queries


def test_merge_lists_is_a_round_robin_union():
    assert merge_lists([["a b", "c d"], ["e f", "a b", "g h"]]) == ["a b", "e f", "c d", "g h"]


def test_sampling_table_has_one_row_per_arm_and_merged_lists_only_grow(list_writer, retriever):
    model, tokenizer = list_writer
    per_row = sampling_recall(model, tokenizer, ROWS, retriever, SPEC, seed=3, generation=GENERATION)
    assert len(retriever.calls) == 1   # every distinct query of every arm in one call
    table = sampling_table(per_row)
    assert table["arm"].tolist() == ["greedy", "n=1", "n=2", "n=4", "n=8"]
    assert table["n_lists"].tolist() == [0, 1, 2, 4, 8] and (table["users"] == len(ROWS)).all()
    assert table["recall_at_k"].between(0, 1).all() and table.loc[0, "recall_at_k"] > 0
    queries = per_row[per_row["n_lists"] > 0].pivot(index="row", columns="n_lists", values="n_queries")
    assert (queries.diff(axis=1).iloc[:, 1:] >= 0).all().all()   # n lists hold the first n - 1's queries
    assert (queries[8] > queries[1]).any()                       # and sampling at T = 1 adds new ones

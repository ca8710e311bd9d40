"""The rewards as TRL reward functions: one float per completion, named for TRL's log, one retrieval each."""
from __future__ import annotations

import pytest

from training.query_lists.query_list import QueryListSpec, parse_list
from training.query_lists.rewards import REWARD_NAMES, RewardWeights
from training.query_lists.trl_rewards import ListRetrievals, reward_functions

SPEC = QueryListSpec(n_queries=3, per_query=3, k=4)
GOOD = "nba lakers score\nsnow forecast weekend\nwinter storm"
BAD = "mortgage rates rise\ninterest rates"   # off-topic, low-quality news, one query short
COMPLETIONS = [GOOD, BAD, GOOD, "!!!"]
CLICKS = [["N1", "N4", "N5"]] * 4


def call_all(functions, completions=COMPLETIONS, **columns):
    columns = {"clicks": CLICKS, "user_id": ["U1"] * 4, "trainer_state": None, **columns}
    return {f.__name__: f(prompts=["p"] * len(completions), completions=completions, **columns) for f in functions}


def test_reward_functions_score_each_completion_and_are_named_for_trl(retriever, quality_scorer):
    functions = reward_functions(ListRetrievals(retriever, SPEC), quality_scorer, RewardWeights())
    scores = call_all(functions)
    assert list(scores) == list(REWARD_NAMES)
    for name, values in scores.items():
        assert len(values) == 4 and all(isinstance(v, float) for v in values), name
        assert values[0] == values[2], name                        # same completion, same reward
        assert values[0] > values[1] >= values[3] == 0.0, name     # good list > bad list > garbage
    assert [f.__name__ for f in reward_functions(ListRetrievals(retriever, SPEC))] == list(REWARD_NAMES[:3])


def test_the_four_rewards_retrieve_each_distinct_completion_once(retriever, quality_scorer):
    functions = reward_functions(ListRetrievals(retriever, SPEC), quality_scorer)
    call_all(functions)
    distinct_queries = [q for text in (GOOD, BAD) for q in parse_list(text, SPEC).queries]
    assert retriever.calls == [distinct_queries]   # one call for the batch; "!!!" has no query to retrieve
    call_all(functions)                             # the same completions again: served from the cache
    assert len(retriever.calls) == 1
    call_all(functions, completions=[GOOD, "nasa moon mission\nheavy snow", GOOD, BAD])
    assert retriever.calls[1] == ["nasa moon mission", "heavy snow"]   # only the new completion


def test_per_day_retrievers_and_conversational_completions(new_retriever, quality_scorer):
    by_day = {"2019-11-11": new_retriever(), "2019-11-12": new_retriever()}
    functions = reward_functions(ListRetrievals(by_day, SPEC), quality_scorer)
    days = ["2019-11-11", "2019-11-12", "2019-11-11", "2019-11-12"]
    chat = [[{"role": "assistant", "content": text}] for text in COMPLETIONS]
    scores = call_all(functions, completions=chat, target_day=days)
    assert scores["retrieval"][0] > scores["retrieval"][1]
    assert len(by_day["2019-11-11"].calls) == len(by_day["2019-11-12"].calls) == 1   # one call per day
    with pytest.raises(ValueError, match="target_day column"):
        call_all(functions)
    with pytest.raises(KeyError, match="no retriever for target day '2019-11-13'"):
        call_all(functions, target_day=["2019-11-13"] * 4)


def test_the_retrieval_reward_names_a_missing_clicks_column(retriever):
    retrieval = reward_functions(ListRetrievals(retriever, SPEC))[0]
    with pytest.raises(ValueError, match="'clicks' column"):
        retrieval(prompts=["p"], completions=[GOOD])

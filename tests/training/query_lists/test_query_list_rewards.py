"""The list parse, the round-robin union and the four rewards: better lists score higher."""
from __future__ import annotations

import numpy as np
import pytest

from training.query_lists.query_list import QueryListSpec, parse_list, round_robin
from training.query_lists.rewards import (
    RewardWeights,
    coverage_reward,
    format_reward,
    list_union,
    quality_reward,
    retrieval_reward,
)

SPEC = QueryListSpec(n_queries=3, per_query=3, k=4)
CLICKS = ["N1", "N4", "N5"]   # a user who clicked basketball and snow news


def union_of(text, retriever, spec=SPEC):
    return list_union(retriever(list(parse_list(text, spec).queries)), spec)


def test_parse_list_keeps_counts_of_what_it_drops():
    parsed = parse_list("Here are queries:\n1. NBA scores tonight\n- nba\n\n2. tonight scores nba\n"
                        "\u2022 \"snow storm warning\"\n" + " ".join(["word"] * 13) + "\nmoon mission\nfourth one here",
                        SPEC)
    assert parsed.queries == ("nba scores tonight", "snow storm warning", "moon mission")   # capped at N = 3
    assert (parsed.n_valid, parsed.n_invalid, parsed.n_duplicates) == (5, 2, 1)   # 1 word, 13 words; word-set repeat
    assert parsed.n_lines == 7
    assert parse_list(None).queries == () and parse_list("\u4f60\u597d \u4e16\u754c").n_invalid == 1


def test_round_robin_takes_each_list_in_turn_without_repeats():
    assert round_robin([["a", "b", "c"], ["d", "a"], ["e"]]) == ["a", "d", "e", "b", "c"]
    assert round_robin([["a", "b", "c"], ["d", "a"], ["e"]], limit=3) == ["a", "d", "e"]
    assert round_robin([]) == [] and round_robin([["a"]], limit=0) == []


def test_retrieval_reward_is_higher_for_the_list_about_the_clicked_topics(retriever):
    good = union_of("nba lakers score\nsnow forecast weekend\nwinter storm", retriever)
    bad = union_of("stock market\nnasa rocket\nmortgage rates", retriever)
    assert retrieval_reward(good, CLICKS, SPEC.k) > retrieval_reward(bad, CLICKS, SPEC.k) == 0.0
    assert retrieval_reward(["N1", "N4", "N5", "N2", "N3"], CLICKS, k=2) == pytest.approx(2 / 3)   # only the top k
    assert retrieval_reward(["N1"], ["N1", "N1"], k=1) == 1.0   # distinct clicks
    with pytest.raises(ValueError, match="at least one held-out click"):
        retrieval_reward(good, [], SPEC.k)


def test_coverage_rewards_distinct_news_and_penalises_duplicate_queries(retriever):
    varied = "nba playoffs schedule\nheavy snow forecast\nnasa moon mission"
    repeated = "nba playoffs schedule\nschedule nba playoffs\nnba playoffs schedule"
    scores = {}
    for name, text in (("varied", varied), ("repeated", repeated)):
        parsed = parse_list(text, SPEC)
        scores[name] = coverage_reward(parsed, union_of(text, retriever), SPEC, duplicate_penalty=0.1)
    assert scores["varied"] == pytest.approx(7 / 9)   # 3 nba + 2 snow + 2 nasa news of N * per_query = 9
    assert scores["repeated"] == pytest.approx(max(0.0, 3 / 9 - 0.1 * 2))
    parsed = parse_list(repeated, SPEC)
    assert coverage_reward(parsed, union_of(repeated, retriever), SPEC, duplicate_penalty=0.0) > scores["repeated"]


def test_format_reward_partial_credit_rules():
    assert format_reward(parse_list("nba scores tonight\nsnow storm\nmoon mission", SPEC), SPEC) == 1.0
    assert format_reward(parse_list("nba scores tonight\nsnow storm", SPEC), SPEC) == pytest.approx(2 / 3)
    surplus = "nba scores tonight\nsnow storm\nmoon mission\nstock market"
    assert format_reward(parse_list(surplus, SPEC), SPEC) == pytest.approx(2 / 3)
    invalid = "nba scores tonight\nsnow storm\nmoon mission\nnba"
    assert format_reward(parse_list(invalid, SPEC), SPEC) == pytest.approx(2 / 3)
    for garbage in ("", "###", "\u00e9\u00e8\u00ea\u00eb \u00e0\u00e2", "x\ny\nz", "a " * 40):
        assert format_reward(parse_list(garbage, SPEC), SPEC) == 0.0


def test_quality_reward_is_the_mean_score_of_what_is_retrieved(quality_scorer):
    assert quality_reward(["N1", "N2"], quality_scorer) == pytest.approx(0.6)
    assert quality_reward(["N1", "N4"], quality_scorer) > quality_reward(["N2", "N5"], quality_scorer)
    assert quality_reward([], quality_scorer) == 0.0
    with pytest.raises(ValueError, match="one finite score per news id"):
        quality_reward(["N1", "N2"], lambda ids: np.array([0.5]))


def test_reward_weights_validate_and_order():
    weights = RewardWeights(format=0.5)
    assert weights.of(["format", "retrieval"]) == [0.5, 1.0]
    assert RewardWeights.from_dict(weights.to_dict()) == weights
    with pytest.raises(ValueError, match="unknown reward name"):
        weights.of(["speed"])
    with pytest.raises(ValueError, match="RewardWeights.coverage"):
        RewardWeights(coverage=-1.0)
    with pytest.raises(ValueError, match="max_words"):
        QueryListSpec(min_words=3, max_words=2)

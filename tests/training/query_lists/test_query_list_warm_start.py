"""Warm-start SFT targets: key phrases of the next day's clicks, in the list format the policy's parse reads back."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from builders.slm import news_corpus

from training.query_lists.query_list import QueryListSpec, parse_list
from training.query_lists.warm_start import warm_start_targets

NEWS = pd.DataFrame({
    "news_id": ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9"],
    "title": ["Lakers win in overtime thriller", "Overtime thriller: Lakers win",   # one word set
              "Snow storm hits the city", "You won't believe this",                # N4: no key phrase left
              "Stocks rally on rate cut", "Nasa plans moon mission", "Fed holds rates",
              "Москва новости сегодня", "Snow"],                                   # not English; one word
})
ROWS = pd.DataFrame({
    "user_id": ["U1", "U2", "U3"],
    "target_day": ["2019-11-11"] * 3,
    "message": ["m1", "m2", "m3"],
    "clicks": [["N1", "N2", "N3", "N5", "N6"], ["N4", "N8", "N9", "N99"], ["N7"]],
})


def test_targets_are_the_next_days_key_phrases_deduplicated_and_capped():
    spec = QueryListSpec(n_queries=3)
    out = warm_start_targets(ROWS, NEWS, spec)
    assert out.examples["user_id"].tolist() == ["U1", "U3"]          # U2's clicks give no valid phrase
    assert out.examples["target_day"].tolist() == ["2019-11-11"] * 2   # the rows' other columns are kept
    assert out.messages == ["m1", "m3"]
    assert out.examples["queries"].tolist() == [
        ("lakers win overtime thriller", "snow storm hits city", "stocks rally rate cut"), ("fed holds rates",)]
    assert out.targets == ["lakers win overtime thriller\nsnow storm hits city\nstocks rally rate cut",
                           "fed holds rates"]
    assert (out.n_rows, out.n_dropped_rows, out.n_unknown_news) == (3, 1, 1)
    assert (out.n_invalid_phrases, out.n_duplicate_phrases, out.n_capped_phrases) == (3, 1, 1)


def test_every_target_parses_back_to_its_queries():
    titles = news_corpus(300)
    news = pd.DataFrame({"news_id": [f"N{i}" for i in range(len(titles))], "title": titles})
    rng = np.random.default_rng(0)
    clicks = [list(dict.fromkeys(rng.choice(news["news_id"], size=rng.integers(1, 12)))) for _ in range(200)]
    rows = pd.DataFrame({"message": [f"m{i}" for i in range(200)], "clicks": clicks})
    for spec in (QueryListSpec(), QueryListSpec(n_queries=8, min_words=3, max_words=4)):
        out = warm_start_targets(rows, news, spec)
        assert len(out.examples) > 100 and out.n_rows == 200
        for queries, target in zip(out.examples["queries"], out.targets):
            parsed = parse_list(target, spec)
            assert parsed.queries == queries and parsed.n_invalid == parsed.n_duplicates == 0
            assert 1 <= len(queries) <= spec.n_queries
            assert all(spec.min_words <= len(q.split()) <= spec.max_words for q in queries)
        assert max(len(q) for q in out.examples["queries"]) == spec.n_queries


def test_warm_start_targets_name_missing_columns_and_keep_an_empty_frame_shaped():
    with pytest.raises(ValueError, match=r"the row frame lacks column\(s\) \['clicks'\]"):
        warm_start_targets(ROWS.drop(columns="clicks"), NEWS)
    with pytest.raises(ValueError, match=r"news lacks column\(s\) \['title'\]"):
        warm_start_targets(ROWS, NEWS.drop(columns="title"))
    none = warm_start_targets(ROWS.iloc[1:2], NEWS)
    assert none.messages == [] and none.targets == [] and none.n_dropped_rows == 1
    assert {"message", "queries", "target"} <= set(none.examples.columns)


def test_filled_targets_add_the_read_titles_phrases_most_recent_first_after_the_clicks():
    spec = QueryListSpec(n_queries=3)
    rows = ROWS.assign(read=[["N7"], ["N3"], ["N6", "N4", "N9", "N5", "N1"]])
    out = warm_start_targets(rows, NEWS, spec, source="filled")
    assert out.examples["user_id"].tolist() == ["U1", "U3"]            # no click phrase: dropped, as next-day
    assert out.examples["queries"].tolist() == [                        # U1 is full from its clicks alone
        ("lakers win overtime thriller", "snow storm hits city", "stocks rally rate cut"),
        ("fed holds rates", "lakers win overtime thriller", "stocks rally rate cut")]   # N1, N5; then full
    assert out.n_filled_queries == 2
    assert warm_start_targets(rows, NEWS, spec).n_filled_queries == 0
    duplicate = warm_start_targets(rows.assign(read=[[], [], ["N9", "N4", "N7", "N5"]]), NEWS, spec, source="filled")
    assert duplicate.examples["queries"].iloc[1] == ("fed holds rates", "stocks rally rate cut")   # N7 once; no N4, N9
    with pytest.raises(ValueError, match=r"the row frame lacks column\(s\) \['read'\]"):
        warm_start_targets(ROWS, NEWS, spec, source="filled")
    with pytest.raises(ValueError, match="unknown warm-start target source 'history'"):
        warm_start_targets(rows, NEWS, spec, source="history")

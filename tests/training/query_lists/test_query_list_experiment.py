"""The protocol's days, the arms' recall@K of the users' next-day clicks, the random arm and the arms table."""
import itertools

import numpy as np
import pandas as pd
import pytest

from training.metrics.intervals import paired_difference
from training.query_lists.experiment import (
    ArmRecall,
    PolicyRecipe,
    ProtocolDays,
    arms_table,
    capped,
    list_recalls,
    newest_reads,
    path_recalls,
    random_lists,
)
from training.query_lists.query_list import QueryListSpec
from training.retrieval.live_news import LiveWindow

DAYS = ["2019-11-09", "2019-11-10", "2019-11-11", "2019-11-12", "2019-11-13", "2019-11-14"]


def test_protocol_days_follow_the_protocol():
    days = ProtocolDays.of("2019-11-14", DAYS)
    # D-4 = 11-10 (its day before, 11-09, is in the log), D-3, D-2; selection D-1; report D
    assert days.train == ("2019-11-10", "2019-11-11", "2019-11-12")
    assert days.selection == "2019-11-13" and days.report == "2019-11-14" and not days.note
    assert days.all == ("2019-11-10", "2019-11-11", "2019-11-12", "2019-11-13", "2019-11-14")


def test_a_short_log_trains_on_the_day_before_without_selection():
    days = ProtocolDays.of("2019-11-11", DAYS[:3])
    assert days.train == ("2019-11-10",) and days.selection is None
    assert "no selection day" in days.note


def test_protocol_days_name_what_is_missing():
    with pytest.raises(ValueError, match=r"partition 2019-11-09 and the day before it must be in the behaviour log"):
        ProtocolDays.of("2019-11-09", DAYS)


def _rows(clicks, days=None):
    return pd.DataFrame({"user_id": [f"U{i}" for i in range(len(clicks))],
                         "target_day": days or ["2019-11-14"] * len(clicks), "clicks": clicks})


def test_list_recalls_against_a_hand_computation(retriever):
    spec = QueryListSpec(n_queries=3, per_query=3, k=4)
    lists = [["nba lakers", "snow forecast"], ["nasa moon"], []]
    rows = _rows([["N1", "N5", "N9"], ["N11"], ["N1"]])
    frame = list_recalls(lists, rows, {"2019-11-14": retriever}, spec)
    # the two queries' results interleaved (first of each, then second of each, ...), first occurrence kept, top K
    a, b = retriever(["nba lakers"])[0], retriever(["snow forecast"])[0]
    interleaved = [x for pair in itertools.zip_longest(a, b) for x in pair if x is not None]
    union = list(dict.fromkeys(interleaved))[:4]
    assert frame.loc[0, "recall"] == pytest.approx(len({"N1", "N5", "N9"} & set(union)) / 3)
    assert frame.loc[1, "recall"] == 1.0 and frame.loc[2, "recall"] == 0.0
    assert frame["n_queries"].tolist() == [2, 1, 0]
    # every distinct query of a day is retrieved in one call
    assert retriever.calls[0] == ["nba lakers", "snow forecast", "nasa moon"]


def test_list_recalls_need_a_retriever_per_day(retriever):
    with pytest.raises(KeyError, match="no retriever for target day 2019-11-13"):
        list_recalls([["nba lakers"]], _rows([["N1"]], ["2019-11-13"]), {"2019-11-14": retriever}, QueryListSpec())


def test_random_lists_draw_live_titles_at_equal_coverage():
    news = pd.DataFrame({"news_id": [f"N{i}" for i in range(10)],
                         "title": [f"Title number {i} of the day" for i in range(10)]})
    first_seen = pd.Series(pd.to_datetime(["2019-11-14 01:00"] * 8 + ["2019-11-01 00:00"] * 2), index=news["news_id"])
    window = LiveWindow(first_seen, 2)
    spec = QueryListSpec(n_queries=4)
    lists = random_lists(_rows([["N1"], ["N2"]]), news, window, spec, seed=3)
    assert [len(lst) for lst in lists] == [4, 4]
    live_titles = {f"title number {i} of the day" for i in range(8)}
    assert all(q in live_titles for lst in lists for q in lst) and all(len(set(lst)) == 4 for lst in lists)
    assert lists == random_lists(_rows([["N1"], ["N2"]]), news, window, spec, seed=3)
    with pytest.raises(ValueError, match="the random arm needs 9"):
        random_lists(_rows([["N1"]]), news, window, QueryListSpec(n_queries=9))


def test_arms_table_intervals_are_paired_against_the_reference():
    rng = np.random.default_rng(0)
    reference = rng.random((2, 50))
    other = reference[:1] - 0.2
    table, markdown = arms_table([ArmRecall("policy", reference, 6.0, 30.0), ArmRecall("other", other, 5.0, 20.0)],
                                 "policy")
    expected = paired_difference(other, reference)
    row = table.set_index("arm").loc["other"]
    assert row["diff"] == pytest.approx(expected.estimate) and row["high"] < 0
    assert "below 0" in markdown and "reference" in markdown
    assert table.set_index("arm").loc["policy", "recall"].count("±") == 1   # two seeds: mean ± std


def test_capped_takes_the_first_users_by_day_and_id():
    rows = pd.DataFrame({"target_day": ["d2", "d1", "d1"], "user_id": ["U1", "U9", "U2"]})
    assert capped(rows, 2)["user_id"].tolist() == ["U2", "U9"] and len(capped(rows, 0)) == 3


def test_newest_reads_are_the_last_item_of_the_latest_history_before_the_day():
    histories = pd.DataFrame({
        "user_id": ["U1", "U1", "U2", "U3"],
        "time": pd.to_datetime(["2019-11-13 08:00", "2019-11-13 20:00", "2019-11-14 01:00", "2019-11-12 09:00"]),
        "history": [["N1", "N2"], ["N2", "N3"], ["N9"], []]})
    # U2's only history is on the day itself (not before it); U3's is empty
    assert newest_reads(histories, ["U1", "U2", "U3"], "2019-11-14") == {"U1": "N3"}


def test_path_recalls_per_path_and_the_union_with_the_interest_path():
    candidates = pd.DataFrame({
        "trigger_id": ["T1"] * 5, "path": ["coclick", "coclick", "union", "union", "union"],
        "rank": [1, 0, 0, 1, 2], "news_id": ["N2", "N1", "N1", "N5", "N2"]})
    rows = pd.DataFrame({"user_id": ["U1", "U2"], "clicks": [["N1", "N7"], ["N8"]]})
    frame = path_recalls(candidates, {"U1": "T1"}, rows, [["N7", "N1"], ["N8"]], k=2)
    got = frame.set_index(["row", "path"])["recall"]
    assert got[0, "coclick"] == 0.5 and got[0, "union"] == 0.5       # top 2 by rank: N1, N2 / N1, N5
    assert got[0, "interest"] == 1.0                                  # N7, N1
    assert got[0, "union+interest"] == 1.0                            # N1, N7 (round robin, cut at 2)
    assert got[1, "union"] == 0.0 and got[1, "interest"] == 1.0       # U2 has no trigger: nothing found
    with pytest.raises(ValueError, match="1 interest lists for 2 rows"):
        path_recalls(candidates, {}, rows, [["N1"]], k=2)


def test_policy_recipe_names_an_unknown_target_source():
    assert PolicyRecipe(targets="filled").targets == "filled"
    with pytest.raises(ValueError, match=r"PolicyRecipe.targets must be one of \['next_day', 'filled'\]"):
        PolicyRecipe(targets="history")

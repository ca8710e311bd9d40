"""User prompts with signals, and per (user, day) rows that show nothing from the target day on."""
from __future__ import annotations

import pandas as pd
import pytest

from training.query_lists.prompt_rows import ROW_COLUMNS, user_day_rows
from training.slm.prompts import user_prompt

NEWS = pd.DataFrame({"news_id": ["N1", "N2", "N3", "N4", "N5"],
                     "title": ["Lakers win in overtime", "Snow storm hits the city", "Stocks rally on rate cut",
                               "Nasa plans moon mission", "Fed holds rates"]})


def test_user_prompt_without_signals_is_unchanged():
    assert user_prompt(["Lakers win", "Snow storm"]) == (
        "Recently read (most recent last):\n1. Lakers win\n2. Snow storm\nSearch queries:")


def test_user_prompt_shows_the_latest_distinct_signals_above_the_history():
    searches = [f"query {i}" for i in range(7)] + ["Query 2"]   # a repeat moves to its latest place
    text = user_prompt(["Lakers win"], searches=searches, follows=["nba", "weather"], max_signals=3)
    assert text == ("Searched recently (most recent last):\n- query 5\n- query 6\n- Query 2\n"
                    "Topics followed:\n- nba\n- weather\n"
                    "Recently read (most recent last):\n1. Lakers win\nSearch queries:")
    assert user_prompt([], follows=["nba"]).startswith("Topics followed:\n- nba")   # signals alone suffice
    with pytest.raises(ValueError, match="history title, search or followed topic"):
        user_prompt([" "], searches=["  "])


def _frames():
    utc = "UTC"
    histories = pd.DataFrame({
        "impression_id": [1, 2, 3],
        "user_id": ["U1", "U1", "U2"],
        "time": pd.to_datetime(["2019-11-10 09:00", "2019-11-11 08:00", "2019-11-11 10:00"]).tz_localize(utc),
        "history": [["N1"], ["N1", "N4"], ["N2"]],   # U1's day-11 history is not known at the end of day 10
    })
    impressions = pd.DataFrame({
        "impression_id": [1, 1, 2, 2, 3],
        "user_id": ["U1", "U1", "U1", "U1", "U2"],
        "time": pd.to_datetime(["2019-11-10 09:00"] * 2 + ["2019-11-11 08:00"] * 2
                               + ["2019-11-11 10:00"]).tz_localize(utc),
        "news_id": ["N3", "N2", "N5", "N3", "N4"],
        "label": [1, 0, 1, 1, 1],
    })
    signals = pd.DataFrame({
        "user_id": ["U1", "U1", "U1", "U2"],
        "time": pd.to_datetime(["2019-11-09 12:00", "2019-11-10 23:59", "2019-11-11 00:00", "2019-11-10 07:00"]),
        "kind": ["follow", "search", "search", "search"],
        "text": ["basketball", "lakers tickets", "future secret search", "moon landing"],
    })
    return histories, impressions, signals


def test_user_day_rows_use_only_what_happened_before_the_target_day():
    histories, impressions, signals = _frames()
    rows = user_day_rows(histories, impressions, NEWS, ["2019-11-11"], signals)
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert rows["user_id"].tolist() == ["U1", "U2"]
    row = rows.iloc[0]
    assert (row["day"], row["target_day"]) == ("2019-11-10", "2019-11-11")
    assert row["clicks"] == ["N5", "N3"]         # the day-11 clicks, first click first
    assert row["read"] == ["N1", "N3"]           # the titles the message lists, oldest first
    assert user_day_rows(histories, impressions, NEWS, ["2019-11-11"], max_history=1)["read"].iloc[0] == ["N3"]
    message = row["message"]
    assert "lakers tickets" in message and "basketball" in message       # signals up to 23:59 of day 10
    assert "future secret search" not in message                         # from day 11 on: never shown
    assert "Nasa plans moon mission" not in message and "Fed holds rates" not in message   # day-11 history / clicks
    assert message.index("Lakers win in overtime") < message.index("Stocks rally on rate cut")  # then day-10 click
    assert (row["n_searches"], row["n_follows"]) == (1, 1)


def test_user_day_rows_without_signals_and_on_several_days():
    histories, impressions, signals = _frames()
    rows = user_day_rows(histories, impressions, NEWS, ["2019-11-11", "2019-11-12", "2019-11-10"])
    # U2 showed nothing by the end of day 10 (no history, no signal); no clicks on day 12; nothing before day 10
    assert rows[["user_id", "target_day"]].values.tolist() == [["U1", "2019-11-11"]]
    assert "Searched" not in rows["message"].iloc[0] and rows["n_searches"].iloc[0] == 0
    with_u2 = user_day_rows(histories, impressions, NEWS, ["2019-11-11"], signals.iloc[3:])
    assert with_u2["user_id"].tolist() == ["U1", "U2"]   # U2's day-10 search is enough for a prompt
    assert with_u2["message"].iloc[1] == "Searched recently (most recent last):\n- moon landing\nSearch queries:"


def test_user_day_rows_name_bad_signal_kinds_and_missing_columns():
    histories, impressions, signals = _frames()
    with pytest.raises(ValueError, match=r"unknown kind\(s\) \['unfollow'\]"):
        user_day_rows(histories, impressions, NEWS, ["2019-11-11"], signals.assign(kind="unfollow"))
    with pytest.raises(ValueError, match=r"impressions lacks column\(s\) \['label'\]"):
        user_day_rows(histories, impressions.drop(columns="label"), NEWS, ["2019-11-11"])

"""Windowed log counts on a hand-made 4-day log, leakage, serving snapshots and the cheap pair features."""
import numpy as np
import pandas as pd
import pytest

from training.embedding_table import EmbeddingTable
from training.ltr.count_features import (
    CountSnapshot,
    LogCounts,
    count_feature_names,
    pair_feature_names,
    pair_features,
)

D1, D2, D3, D4, D5 = "2019-11-01", "2019-11-02", "2019-11-03", "2019-11-04", "2019-11-05"


def _impressions(rows):
    frame = pd.DataFrame(rows, columns=["news_id", "day", "hour", "label"])
    frame["time"] = pd.to_datetime(frame["day"]).dt.tz_localize("UTC") + pd.to_timedelta(frame["hour"], unit="h")
    return frame.drop(columns="hour")


# news_id, day, hour, clicked.  N1: day1 2 shown / 1 click (first at 08:00), day2 1/1, day3 1/0, day4 3/3;
# N2: day1 1/0, day3 2/2; N3: day2 1/0; N4: first shown on day 4.
IMPRESSIONS = _impressions([
    ("N1", D1, 8, 1), ("N1", D1, 9, 0), ("N2", D1, 9, 0),
    ("N1", D2, 10, 1), ("N3", D2, 10, 0),
    ("N1", D3, 11, 0), ("N2", D3, 12, 1), ("N2", D3, 13, 1),
    ("N1", D4, 7, 1), ("N1", D4, 8, 1), ("N1", D4, 9, 1), ("N4", D4, 9, 0),
])
PAIRS = pd.DataFrame([
    ("T1", "N1", D1, 1), ("T1", "N2", D1, 0), ("T1", "N1", D2, 1), ("T1", "N1", D3, 0), ("T2", "N1", D3, 1),
    ("T1", "N1", D4, 1),
], columns=["trigger_id", "candidate_id", "day", "clicked"])


def _named(counts, triggers, candidates, days, times):
    values = counts.features(triggers, candidates, days, times)
    return pd.DataFrame(values, columns=counts.feature_names())


@pytest.fixture(scope="module")
def counts() -> LogCounts:
    return LogCounts.from_logs(IMPRESSIONS, PAIRS)


def test_feature_names_follow_the_windows(counts):
    assert counts.feature_names() == count_feature_names((1, 3, 7))
    assert counts.feature_names()[:3] == ["cand_clicks_1d", "cand_shown_1d", "cand_ctr_1d"]
    assert counts.feature_names()[-1] == "cand_age_hours"
    assert {"pair_clicks_7d", "pair_shown_3d"} <= set(counts.feature_names())


def test_windows_count_the_days_before_the_row_by_hand(counts):
    at = pd.Timestamp(f"{D4} 10:00", tz="UTC")
    f = _named(counts, ["T1", "T1", "T2"], ["N1", "N2", "N1"], [D4] * 3, [at] * 3)
    n1, n2, t2n1 = f.iloc[0], f.iloc[1], f.iloc[2]
    # 1 day = day 3 only; 3 and 7 days = days 1-3. Day 4's own clicks are never counted.
    assert (n1.cand_clicks_1d, n1.cand_shown_1d) == (0, 1)
    assert (n1.cand_clicks_3d, n1.cand_shown_3d) == (2, 4)
    assert (n1.cand_clicks_7d, n1.cand_shown_7d) == (2, 4)
    assert n1.cand_ctr_3d == pytest.approx((2 + 1) / (4 + 20))
    assert (n2.cand_clicks_1d, n2.cand_shown_1d, n2.cand_clicks_3d, n2.cand_shown_3d) == (2, 2, 2, 3)
    assert (n1.pair_clicks_1d, n1.pair_shown_1d, n1.pair_clicks_3d, n1.pair_shown_3d) == (0, 1, 2, 3)
    assert (n2.pair_clicks_3d, n2.pair_shown_3d) == (0, 1)
    assert (t2n1.pair_clicks_1d, t2n1.pair_shown_1d, t2n1.pair_shown_7d) == (1, 1, 1)
    assert n1.cand_age_hours == pytest.approx(3 * 24 + 2)  # first shown on day 1 at 08:00

    early = _named(counts, ["T1"], ["N1"], [D2], [pd.Timestamp(f"{D2} 00:30", tz="UTC")]).iloc[0]
    assert (early.cand_clicks_1d, early.cand_shown_1d, early.cand_shown_3d) == (1, 2, 2)
    assert early.cand_ctr_1d == pytest.approx(2 / 22)
    later = _named(counts, ["T1"], ["N1"], [D5], [pd.Timestamp(f"{D5} 00:00", tz="UTC")]).iloc[0]
    assert (later.cand_clicks_1d, later.cand_shown_1d, later.cand_shown_3d, later.cand_shown_7d) == (3, 3, 5, 7)
    first_day = _named(counts, ["T1"], ["N1"], [D1], [pd.Timestamp(f"{D1} 12:00", tz="UTC")]).iloc[0]
    assert first_day.cand_shown_7d == 0 and np.isnan(first_day.cand_age_hours)
    assert first_day.cand_ctr_1d == pytest.approx(1 / 20)  # the prior alone


def test_the_rows_own_day_never_leaks(counts):
    # Drop or multiply day 4's logs: features of day-4 rows must not move.
    without = LogCounts.from_logs(IMPRESSIONS[IMPRESSIONS["day"] != D4], PAIRS[PAIRS["day"] != D4])
    more = LogCounts.from_logs(pd.concat([IMPRESSIONS, IMPRESSIONS[IMPRESSIONS["day"] == D4]]),
                               pd.concat([PAIRS, PAIRS[PAIRS["day"] == D4]]))
    args = (["T1", "T1", "T2", "T1"], ["N1", "N2", "N1", "N4"], [D4] * 4,
            [pd.Timestamp(f"{D4} 23:00", tz="UTC")] * 4)
    expected = counts.features(*args)
    np.testing.assert_array_equal(without.features(*args), expected)
    np.testing.assert_array_equal(more.features(*args), expected)
    # ... while day-5 rows do see day 4.
    later = (args[0], args[1], [D5] * 4, [pd.Timestamp(f"{D5} 01:00", tz="UTC")] * 4)
    assert not np.array_equal(counts.features(*later), without.features(*later), equal_nan=True)


def test_age_is_nan_for_news_never_seen_before_the_day(counts):
    f = _named(counts, ["T1", "T1", "T9"], ["N4", "N9", "N4"], [D4, D4, D5],
               [pd.Timestamp(f"{D4} 12:00", tz="UTC")] * 2 + [pd.Timestamp(f"{D5} 12:00", tz="UTC")])
    assert np.isnan(f.cand_age_hours.iloc[0])    # first shown on the row's own day
    assert np.isnan(f.cand_age_hours.iloc[1])    # never shown
    assert f.cand_age_hours.iloc[2] == pytest.approx(27.0)  # day 4 09:00 -> day 5 12:00
    assert (f.iloc[1].drop("cand_age_hours").filter(like="shown") == 0).all()


def test_features_are_float32_and_vectorised_over_mixed_days(counts):
    rng = np.random.default_rng(0)
    n = 400
    triggers = rng.choice(["T1", "T2", "T3"], n)
    candidates = rng.choice(["N1", "N2", "N3", "N4", "N9"], n)
    days = rng.choice([D1, D2, D3, D4, D5], n)
    times = pd.to_datetime(pd.Series(days)).dt.tz_localize("UTC") + pd.to_timedelta(rng.integers(0, 24, n), "h")
    together = counts.features(triggers, candidates, days, times)
    assert together.dtype == np.float32 and together.shape == (n, len(counts.feature_names()))
    for day in (D2, D4):
        on_day = days == day
        alone = counts.features(triggers[on_day], candidates[on_day], days[on_day], times[on_day])
        np.testing.assert_array_equal(alone, together[on_day])


@pytest.mark.parametrize("day", [D1, D2, D3, D4, D5])
def test_snapshot_gives_exactly_what_features_give_for_that_day(counts, day, tmp_path):
    rng = np.random.default_rng(1)
    triggers = rng.choice(["T1", "T2", "T3"], 60)
    candidates = rng.choice(["N1", "N2", "N3", "N4", "N9"], 60)
    times = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, 60), "s")
    expected = counts.features(triggers, candidates, [day] * 60, times)
    snapshot = counts.snapshot(day)
    np.testing.assert_array_equal(snapshot.features(triggers, candidates, times), expected)
    loaded = CountSnapshot.load(snapshot.save(tmp_path / "snap"))
    assert loaded.as_of_day == day and loaded.feature_names() == counts.feature_names()
    np.testing.assert_array_equal(loaded.features(triggers, candidates, times), expected)
    one_time = times[0]
    np.testing.assert_array_equal(loaded.features(triggers, candidates, one_time),
                                  counts.features(triggers, candidates, [day] * 60, [one_time] * 60))
    shuffled = CountSnapshot(day, snapshot.windows_days, snapshot.ctr_prior, snapshot.candidates.iloc[::-1],
                             snapshot.pairs.iloc[::-1].reset_index(drop=True), snapshot.first_seen)
    np.testing.assert_array_equal(shuffled.features(triggers, candidates, times), expected)  # any row order


def test_snapshot_save_writes_no_pickle(counts, tmp_path):
    counts.snapshot(D4).save(tmp_path / "snap")
    assert sorted(p.suffix for p in (tmp_path / "snap").iterdir()) == [".json", ".parquet", ".parquet", ".parquet"]


def test_bad_inputs_name_the_field(counts):
    with pytest.raises(ValueError, match="impressions lacks column"):
        LogCounts.from_logs(IMPRESSIONS.drop(columns="time"), PAIRS)
    with pytest.raises(ValueError, match="days must be 'YYYY-MM-DD'"):
        counts.features(["T1"], ["N1"], ["Nov 4th"], [pd.Timestamp(D4, tz="UTC")])
    with pytest.raises(ValueError, match="trigger_ids has 2 entries for 1"):
        counts.features(["T1", "T2"], ["N1"], [D4], [pd.Timestamp(D4, tz="UTC")])
    with pytest.raises(ValueError, match="windows_days"):
        LogCounts.from_logs(IMPRESSIONS, PAIRS, windows_days=(1, 0))


def test_pair_features_cosine_and_recall_ranks():
    table = EmbeddingTable(["A", "B", "C", "Z"], np.array([[1, 0], [1, 1], [0, 2], [0, 0]], dtype=np.float32))
    ranks = pd.DataFrame({"trigger_id": ["A", "A", "A", "A", "B"], "path": ["coclick", "embedding", "qprime",
                                                                           "coclick", "coclick"],
                          "rank": [0, 4, 2, 7, 1], "news_id": ["B", "B", "C", "B", "A"], "score": 1.0})
    values, names = pair_features(["A", "A", "A", "B", "Z"], ["B", "C", "X", "A", "A"], table, ranks)
    assert names == pair_feature_names() and values.dtype == np.float32 and values.shape == (5, 7)
    f = pd.DataFrame(values, columns=names)
    np.testing.assert_allclose(f.embedding_cosine[:4], [np.sqrt(0.5), 0.0, np.nan, np.sqrt(0.5)], rtol=1e-6)
    assert np.isnan(f.embedding_cosine[4])  # zero vector
    # 1-based ranks; a duplicate (A, coclick, B) keeps its best rank
    assert f.loc[0, ["in_coclick", "rank_coclick", "in_embedding", "rank_embedding"]].tolist() == [1, 1, 1, 5]
    assert f.in_qprime[0] == 0 and np.isnan(f.rank_qprime[0])
    assert f.loc[1, ["in_qprime", "rank_qprime", "in_coclick"]].tolist() == [1, 3, 0]
    assert f.loc[3, ["in_coclick", "rank_coclick"]].tolist() == [1, 2]
    assert (f.loc[2, ["in_coclick", "in_embedding", "in_qprime"]] == 0).all()

    bare, _ = pair_features(["A"], ["B"], None, None)
    assert np.isnan(bare[0, 0]) and (bare[0, 1::2] == 0).all() and np.isnan(bare[0, 2::2]).all()

"""Click heatmaps and the category treemap on a tiny handmade log: numbers against a plain loop, PNGs."""
import math

import matplotlib
import pandas as pd
import pytest

from training.data.prepared import BehaviorLog
from training.plots.click_heatmaps import (
    HISTORY_BUCKETS,
    ctr_by_history_length,
    ctr_by_hour,
    history_bucket,
    plot_click_matrix,
)
from training.plots.treemap import Rect, category_counts, plot_treemap, squarify, treemap_tiles

NEWS = pd.DataFrame({"news_id": ["N1", "N2", "N3", "N4"], "category": ["sports", "sports", "news", "news"],
                     "subcategory": ["soccer", "golf", "us", "world"]})
# impression_id -> (UTC time, history length, [(news_id, label), ...]); N9 is off the catalogue.
SHOWN = {
    1: ("2019-11-14 08:15:00", 0, [("N1", 1), ("N2", 0), ("N3", 0)]),
    2: ("2019-11-14 08:50:00", 3, [("N1", 0), ("N3", 1), ("N9", 0)]),
    3: ("2019-11-14 23:05:00", 12, [("N2", 1), ("N4", 0), ("N4", 1)]),
    4: ("2019-11-14 00:30:00", 60, [("N1", 1), ("N3", 0)]),
    5: ("2019-11-14 08:59:59", 5, [("N4", 0), ("N2", 0)]),
}


def _log() -> BehaviorLog:
    imps, hists = [], []
    for iid, (time, n_hist, shown) in SHOWN.items():
        ts = pd.Timestamp(time, tz="UTC")
        hists.append({"impression_id": iid, "user_id": f"U{iid}", "time": ts, "day": "2019-11-14",
                      "history": [f"N{k}" for k in range(n_hist)]})
        imps += [{"impression_id": iid, "user_id": f"U{iid}", "time": ts, "day": "2019-11-14", "position": p,
                  "news_id": nid, "label": label, "in_catalogue": nid in set(NEWS["news_id"])}
                 for p, (nid, label) in enumerate(shown)]
    return BehaviorLog(pd.DataFrame(imps), pd.DataFrame(hists))


def _loop_counts(key) -> dict[tuple, list[int]]:
    """(category, key(...)) -> [shown, clicks], by walking the handmade dict."""
    category = dict(zip(NEWS["news_id"], NEWS["category"]))
    subcategory = dict(zip(NEWS["news_id"], NEWS["subcategory"]))
    out: dict[tuple, list[int]] = {}
    for time, n_hist, shown in SHOWN.values():
        hour = int(time[11:13])
        for nid, label in shown:
            cell = out.setdefault(key(category.get(nid, "(unknown)"), subcategory.get(nid, "(unknown)"), hour, n_hist),
                                  [0, 0])
            cell[0] += 1
            cell[1] += label
    return out


def _assert_matches(matrix, expected: dict[tuple, list[int]]) -> None:
    seen = set()
    for category in matrix.shown.index:
        for column in matrix.shown.columns:
            shown, clicks = expected.get((category, column), [0, 0])
            seen.add((category, column))
            assert matrix.shown.loc[category, column] == shown, (category, column)
            assert matrix.clicks.loc[category, column] == clicks, (category, column)
            ctr = matrix.ctr.loc[category, column]
            assert (math.isnan(ctr) and shown == 0) or ctr == pytest.approx(clicks / shown)
    assert set(expected) <= seen  # no cell of the loop is missing from the matrix


def test_history_buckets_cover_every_length_once():
    assert [history_bucket(n) for n in (0, 1, 4, 5, 9, 10, 19, 20, 49, 50, 500)] == [
        "0", "1-4", "1-4", "5-9", "5-9", "10-19", "10-19", "20-49", "20-49", "50+", "50+"]
    with pytest.raises(ValueError, match="negative"):
        history_bucket(-1)


def test_ctr_by_hour_matches_a_loop_over_rows():
    matrix = ctr_by_hour(_log(), NEWS)
    assert list(matrix.shown.columns) == list(range(24))
    assert list(matrix.shown.index) == ["news", "sports", "(unknown)"]  # most shown first (6, 6, 1: stable)
    _assert_matches(matrix, _loop_counts(lambda c, s, hour, n: (c, hour)))
    assert matrix.ctr.loc["sports", 8] == pytest.approx(1 / 4)


def test_ctr_by_history_length_matches_a_loop_over_rows():
    matrix = ctr_by_history_length(_log(), NEWS)
    assert list(matrix.shown.columns) == [b[0] for b in HISTORY_BUCKETS]
    _assert_matches(matrix, _loop_counts(lambda c, s, hour, n: (c, history_bucket(n))))
    assert matrix.ctr.loc["news", "10-19"] == pytest.approx(1 / 2)
    assert math.isnan(matrix.ctr.loc["news", "20-49"])


def test_category_counts_match_a_loop_and_sort_by_size():
    counts = category_counts(_log(), NEWS)
    expected = _loop_counts(lambda c, s, hour, n: (c, s))
    got = {(r.category, r.subcategory): [r.shown, r.clicks] for r in counts.itertuples()}
    assert got == expected
    assert counts["ctr"].tolist() == pytest.approx([c / s for s, c in counts[["shown", "clicks"]].to_numpy()])
    assert counts["category"].tolist()[:2] in (["news", "news"], ["sports", "sports"])  # categories stay together


@pytest.mark.parametrize("values", [[1.0], [5.0, 1.0], [6, 6, 4, 3, 2, 2, 1], [1, 100, 3, 7, 0.5, 20, 20, 9]])
@pytest.mark.parametrize("rect", [Rect(0, 0, 1, 1), Rect(2, -1, 6, 1.5), Rect(0, 0, 0.5, 4)])
def test_squarify_tiles_partition_the_rectangle(values, rect):
    tiles = squarify(values, rect)
    total = sum(values)
    for tile, value in zip(tiles, values):
        assert tile.area == pytest.approx(rect.area * value / total, rel=1e-9)
        assert tile.w > 0 and tile.h > 0
        assert rect.x - 1e-9 <= tile.x and tile.x + tile.w <= rect.x + rect.w + 1e-9
        assert rect.y - 1e-9 <= tile.y and tile.y + tile.h <= rect.y + rect.h + 1e-9
    assert sum(t.area for t in tiles) == pytest.approx(rect.area, rel=1e-12)
    for i, a in enumerate(tiles):  # no two tiles overlap (shared edges allowed)
        for b in tiles[i + 1:]:
            overlap_w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
            overlap_h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
            assert overlap_w <= 1e-9 or overlap_h <= 1e-9, (a, b)


def test_squarify_keeps_tiles_near_square():
    tiles = squarify([1.0] * 16, Rect(0, 0, 1, 1))
    assert max(max(t.w / t.h, t.h / t.w) for t in tiles) < 2.0  # slicing alone would give 16:1 strips


def test_squarify_refuses_non_positive_values():
    with pytest.raises(ValueError, match="positive"):
        squarify([1.0, 0.0], Rect(0, 0, 1, 1))


def test_treemap_subcategory_tiles_nest_in_their_category():
    tiles = treemap_tiles(category_counts(_log(), NEWS))
    assert tiles["w"].mul(tiles["h"]).tolist() == pytest.approx((tiles["shown"] / tiles["shown"].sum()).tolist())
    per_category = tiles.assign(area=tiles["w"] * tiles["h"]).groupby("category")
    for _, group in per_category:
        x0, y0 = group["x"].min(), group["y"].min()
        box = (group["x"] + group["w"]).max() - x0, (group["y"] + group["h"]).max() - y0
        assert box[0] * box[1] == pytest.approx(group["area"].sum())  # the subcategories fill their category's tile


def test_pngs_are_written(tmp_path):
    assert matplotlib.get_backend().lower() == "agg"
    log = _log()
    paths = [plot_click_matrix(ctr_by_hour(log, NEWS), tmp_path / "a" / "hour.png", "CTR by hour", min_shown=1),
             plot_click_matrix(ctr_by_history_length(log, NEWS), tmp_path / "history.png", "CTR by history"),
             plot_treemap(category_counts(log, NEWS), tmp_path / "treemap.png", "shown and clicked")]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


@pytest.mark.parametrize("table, column", [("impressions", "time"), ("histories", "history"), ("news", "category")])
def test_missing_column_is_named(table, column):
    log, news = _log(), NEWS
    if table == "news":
        news = news.drop(columns=column)
    else:
        setattr(log, table, getattr(log, table).drop(columns=column))
    for build in (ctr_by_hour, ctr_by_history_length, category_counts):
        with pytest.raises(ValueError, match=f"{table} lacks column\\(s\\) {column}"):
            build(log, news)


def test_impression_without_history_row_is_an_error():
    log = _log()
    log.histories = log.histories[log.histories["impression_id"] != 3]
    with pytest.raises(ValueError, match=r"impressions \[3\] have no row in histories"):
        ctr_by_hour(log, NEWS)

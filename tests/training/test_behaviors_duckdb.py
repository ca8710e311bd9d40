"""The out-of-core behaviours engine: exact line numbers across chunk boundaries, rows equal to an independent
pandas explode, day-partitioned output that reads back as before, and a memory limit that is honoured."""
import json
import random
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from training.data.behaviors_duckdb import BehaviorStore, InMemoryRows, duckdb_settings
from training.data.prepare import prepare
from training.data.prepared import load_behaviors
from training.data.schema import HISTORIES_SCHEMA, IMPRESSIONS_SCHEMA

NEWS_IDS = [f"N{i}" for i in range(1, 41)]


def news_tsv(ids) -> str:
    return "".join(f"{n}\tnews\tnewsus\tTitle {n}\t\thttps://x/{n}\t[]\t[]\n" for n in ids)


def random_behaviors(n: int, seed: int = 0, n_days: int = 3) -> str:
    """``n`` valid MIND rows over ``n_days`` days, ids N1..N60 (N41..N60 are not in news.tsv)."""
    rng = random.Random(seed)
    lines = []
    for i in range(1, n + 1):
        day, hour = 14 + rng.randrange(n_days), rng.randrange(1, 13)
        when = f"11/{day}/2019 {hour}:{rng.randrange(60):02d}:{rng.randrange(60):02d} {rng.choice(['AM', 'PM'])}"
        history = " ".join(f"N{rng.randrange(1, 61)}" for _ in range(rng.randrange(0, 6)))
        cands = " ".join(f"N{rng.randrange(1, 61)}-{int(rng.random() < 0.2)}" for _ in range(rng.randrange(1, 9)))
        lines.append(f"{i}\tU{rng.randrange(1, 30)}\t{when}\t{history}\t{cands}\n")
    return "".join(lines)


def pandas_explode(behaviors: str, catalogue: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Independent reference: histories and exploded impressions of valid rows, grouped by day, file order within."""
    raw = pd.DataFrame([line.split("\t") for line in behaviors.splitlines()],
                       columns=["impression_id", "user_id", "time", "history", "impressions"])
    raw["impression_id"] = raw["impression_id"].astype("int64")
    raw["time"] = pd.to_datetime(raw["time"], format="%m/%d/%Y %I:%M:%S %p").dt.tz_localize("UTC").astype(
        "datetime64[ms, UTC]")  # parquet has no seconds unit: pandas reads the s column back as ms, as before
    raw["day"] = raw["time"].dt.strftime("%Y-%m-%d")
    hist = raw.assign(history=raw["history"].str.split().map(lambda x: list(x)))
    hist = hist[["impression_id", "user_id", "time", "day", "history"]]
    imps = raw.assign(token=raw["impressions"].str.split()).explode("token")
    imps["position"] = imps.groupby(level=0).cumcount().astype("int32")
    imps["news_id"] = imps["token"].str[:-2]
    imps["label"] = imps["token"].str[-1].astype("int8")
    imps["in_catalogue"] = imps["news_id"].isin(catalogue)
    imps = imps[["impression_id", "user_id", "time", "day", "position", "news_id", "label", "in_catalogue"]]

    def by_day(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values("day", kind="stable").reset_index(drop=True)

    return by_day(imps), by_day(hist)


def mind_dir(tmp_path: Path, behaviors: str | bytes, news_ids=NEWS_IDS) -> Path:
    d = tmp_path / "mind"
    d.mkdir(exist_ok=True)
    (d / "news.tsv").write_text(news_tsv(news_ids), encoding="utf-8")
    (d / "behaviors.tsv").write_bytes(behaviors.encode() if isinstance(behaviors, str) else behaviors)
    return d


def test_exploded_rows_equal_an_independent_pandas_explode(tmp_path):
    behaviors = random_behaviors(1500)
    d = mind_dir(tmp_path, behaviors)
    report = prepare(d, tmp_path / "out", chunk_bytes=8 * 1024, threads=2)  # ~12 chunks, 2 DuckDB threads
    want_imps, want_hist = pandas_explode(behaviors, set(NEWS_IDS))
    got_imps = pd.read_parquet(tmp_path / "out" / "impressions.parquet")
    got_hist = pd.read_parquet(tmp_path / "out" / "histories.parquet")
    pd.testing.assert_frame_equal(got_imps, want_imps)
    pd.testing.assert_frame_equal(got_hist.assign(history=got_hist["history"].map(list)), want_hist)
    assert pq.read_schema(next((tmp_path / "out" / "impressions.parquet").iterdir())).names == IMPRESSIONS_SCHEMA.names
    missing = ~want_imps["in_catalogue"]
    hist_refs = want_hist["history"].explode().dropna()
    assert report.n_candidates == len(want_imps) and report.n_clicks == int((want_imps["label"] == 1).sum())
    assert report.candidates_per_day == want_imps.groupby("day").size().to_dict()
    assert report.n_users == want_hist["user_id"].nunique()
    assert report.missing_news.candidate_rows == int(missing.sum())
    assert report.missing_news.distinct_candidate_ids == want_imps.loc[missing, "news_id"].nunique()
    assert report.missing_news.history_refs == int((~hist_refs.isin(NEWS_IDS)).sum())
    assert report.missing_news.distinct_history_ids == hist_refs[~hist_refs.isin(NEWS_IDS)].nunique()
    assert report.missing_news.history_fraction == pytest.approx((~hist_refs.isin(NEWS_IDS)).mean())


def test_chunk_boundaries_keep_line_numbers_duplicates_and_raw_bytes(tmp_path):
    good = random_behaviors(40, seed=1).splitlines(keepends=True)
    rows = good[:10] + [
        "3\tU1\t11/14/2019 8:55:22 AM\tN1\tN2-1\n",                         # line 11: duplicate of line 3
        "77\tU1\t11/14/2019 8:55:22 AM\tN1\t" + "N2-0 " * 40 + "N2-x\n",    # line 12: longer than a chunk, bad label
        "\r\n",                                                              # line 13: empty (CRLF)
        "5\tU 1\t99/99/2019 8:55:22 AM\tN1\tN2-1\n",                        # line 14: duplicate + bad user + bad time
    ] + good[10:20] + ["3\tU1\t11/14/2019 8:55:22 AM\tN1\tN2-1\r\n"] + good[20:]  # line 25: duplicate again
    raw = "".join(rows).encode()[:-1] + b"\xff\tU1"  # last line: no newline, not UTF-8 either
    d = mind_dir(tmp_path, raw)
    expected = None
    for chunk_bytes in (1 << 20, 200, 64):
        sink = InMemoryRows()
        with BehaviorStore(tmp_path / f"work{chunk_bytes}") as store:
            store.set_catalogue(NEWS_IDS)
            v = store.ingest(d / "behaviors.tsv", sink, chunk_bytes=chunk_bytes)
        n_kept = sink.tables()[1].num_rows
        found = [(i.line, i.field, i.reason) for i in v.issues]
        assert found == [
            (11, "impression_id", "duplicate impression id 3 (first on line 3)"),
            (12, "impressions", "candidate 'N2-x': label 'x' is not 0 or 1"),
            (13, "row", "empty line"),
            (14, "impression_id", "duplicate impression id 5 (first on line 5)"),
            (14, "user_id", "invalid user id 'U 1'"),
            (14, "time", "unparseable time '99/99/2019 8:55:22 AM' (expected like '11/15/2019 8:55:22 AM')"),
            (25, "impression_id", "duplicate impression id 3 (first on line 3)"),
            (len(rows), "row", f"invalid UTF-8 at byte {len(rows[-1]) - 1}"),
        ]
        assert [line for line, _ in v.quarantined] == [11, 12, 13, 14, 25, len(rows)]
        assert v.quarantined[2][1] == b"\r\n" and v.quarantined[4][1] == rows[24].encode()
        assert v.n_rows == len(rows) and n_kept == len(rows) - 6
        if expected is None:
            expected = (found, v.quarantined)
        assert (found, v.quarantined) == expected  # chunking changes nothing


def test_quarantine_and_report_of_a_chunked_prepare(tmp_path):
    behaviors = random_behaviors(30, seed=2) + "x\tU1\t11/14/2019 8:55:22 AM\t\tN1-1\n"
    d = mind_dir(tmp_path, behaviors)
    report = prepare(d, tmp_path / "out", max_bad_fraction=0.1, chunk_bytes=100)
    assert report.bad_rows == {"news.tsv": 0, "behaviors.tsv": 1}
    assert report.issues_by_field == {"behaviors.tsv:impression_id": 1}
    q = tmp_path / "out" / "quarantine"
    assert (q / "behaviors.tsv").read_text() == "x\tU1\t11/14/2019 8:55:22 AM\t\tN1-1\n"
    assert json.loads((q / "behaviors.tsv.issues.jsonl").read_text())["line"] == 31
    assert not list((tmp_path / "out").glob(".*"))  # the DuckDB work folder does not reach the data version


def test_day_partitions_and_loading_some_days(tmp_path):
    d = mind_dir(tmp_path, random_behaviors(300, seed=3, n_days=3))
    prepare(d, tmp_path / "out")
    days = ["2019-11-14", "2019-11-15", "2019-11-16"]
    for name in ("impressions.parquet", "histories.parquet"):
        assert sorted(p.name for p in (tmp_path / "out" / name).iterdir()) == [f"{day}.parquet" for day in days]
    assert pq.read_schema(tmp_path / "out" / "histories.parquet" / "2019-11-15.parquet").names == HISTORIES_SCHEMA.names
    everything = load_behaviors(tmp_path / "out")
    some = load_behaviors(tmp_path / "out", days=["2019-11-16", "2019-11-14", "2019-12-01"])
    want = everything.select_days(["2019-11-14", "2019-11-16"])
    pd.testing.assert_frame_equal(some.impressions, want.impressions)
    pd.testing.assert_frame_equal(some.histories, want.histories)
    none = load_behaviors(tmp_path / "out", days=["2020-01-01"])
    assert len(none.impressions) == 0 and none.impressions.dtypes.equals(everything.impressions.dtypes)


def test_memory_limit_and_threads_are_applied(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSFORGE_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("NEWSFORGE_DUCKDB_THREADS", "1")
    assert duckdb_settings() == ("300MB", 1) and duckdb_settings("2GB", 2) == ("2GB", 2)
    with BehaviorStore(tmp_path / "work", memory_limit="20MB") as store:
        limit, threads = store.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    assert limit in ("19.0 MiB", "19.0MiB", "20.0 MB", "20.0MB") and threads == 1


def test_prepare_succeeds_with_a_memory_limit_smaller_than_the_file(tmp_path):
    cands = " ".join(f"N{k}-{int(k % 9 == 0)}" for k in range(21, 51))  # 30 candidates, N41..N50 not in news.tsv
    behaviors = "".join(f"{i}\tU{i % 997}\t11/{14 + i % 3}/2019 {1 + i % 12}:{i % 60:02d}:07 PM\tN1 N2 N45\t{cands}\n"
                        for i in range(1, 100_001))
    d = mind_dir(tmp_path, behaviors)
    assert (d / "behaviors.tsv").stat().st_size > 20_000_000  # 3 M candidate rows from a 21 MB file
    report = prepare(d, tmp_path / "out", memory_limit="16MB", threads=1, chunk_bytes=1 << 20)
    assert report.n_impressions == 100_000 and report.n_candidates == 3_000_000
    assert report.missing_news.candidate_rows == 1_000_000 and report.missing_news.history_refs == 100_000
    imps = pd.read_parquet(tmp_path / "out" / "impressions.parquet", columns=["impression_id", "position"])
    assert len(imps) == report.n_candidates

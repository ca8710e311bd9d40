"""MIND reading and validation: exact format, every bad row named and quarantined, nothing dropped."""
import json
from pathlib import Path

import pytest

from training.data.mind_reader import read_behaviors, read_news, read_user_signals
from training.data.prepare import PrepareReport, prepare, read_mind_dir
from training.data.prepared import load_behaviors, load_news, load_user_signals
from training.data.validation import DataValidationError

NEWS = (
    "N1\tsports\tfootball_nfl\tBears win again\tA close game.\thttps://x/1\t"
    '[{"Label": "Chicago Bears", "Type": "O", "WikidataId": "Q205033", "Confidence": 1.0, '
    '"OccurrenceOffsets": [0], "SurfaceForms": ["Bears"]}]\t[]\n'
    "N2\tnews\tnewsus\tStorm hits coast\t\thttps://x/2\t[]\t[]\n"
    "N3\tfinance\tmarkets\tStocks rally\tMarkets rose.\thttps://x/3\t[]\t\n"
)
BEHAVIORS = (
    "1\tU1\t11/14/2019 8:55:22 AM\tN1 N2\tN3-1 N2-0 N9-0\n"
    "2\tU2\t11/14/2019 11:05:00 PM\t\tN1-0 N3-1\n"
    "3\tU1\t11/15/2019 12:00:01 AM\tN1 N2\tN2-1 N1-0\n"
)


def write_dir(tmp_path: Path, news: str = NEWS, behaviors: str | bytes = BEHAVIORS) -> Path:
    d = tmp_path / "mind"
    d.mkdir()
    (d / "news.tsv").write_text(news, encoding="utf-8")
    b = behaviors.encode() if isinstance(behaviors, str) else behaviors
    (d / "behaviors.tsv").write_bytes(b)
    return d


def test_reads_mind_rows_exactly(tmp_path):
    d = write_dir(tmp_path)
    news, nv = read_news(d / "news.tsv")
    assert nv.n_bad == 0 and list(news["news_id"]) == ["N1", "N2", "N3"]
    assert news.loc[1, "abstract"] == "" and news.loc[2, "abstract_entities"] == "[]"
    imps, hist, bv = read_behaviors(d / "behaviors.tsv")
    assert bv.n_bad == 0 and bv.n_rows == 3
    assert len(imps) == 7 and list(imps["position"][:3]) == [0, 1, 2]
    assert list(imps["label"]) == [1, 0, 0, 0, 1, 1, 0]
    assert list(hist["history"][1]) == [] and list(hist["history"][0]) == ["N1", "N2"]
    # 12-hour clock: 11:05 PM is 23:05 UTC on the 14th; 12:00:01 AM is just after midnight of the 15th
    assert list(hist["day"]) == ["2019-11-14", "2019-11-14", "2019-11-15"]
    assert hist["time"][1].hour == 23 and hist["time"][2].hour == 0


@pytest.mark.parametrize("line, field, reason", [
    ("4\tU3\t11/14/2019 8:55:22 AM\tN1\tN1-1 N123-x\n", "impressions", "'N123-x': label 'x' is not 0 or 1"),
    ("4\tU3\t2019-11-14 08:55\tN1\tN1-1\n", "time", "unparseable time"),
    ("1\tU3\t11/14/2019 8:55:22 AM\tN1\tN1-1\n", "impression_id", "duplicate impression id 1 (first on line 1)"),
    ("4\tU3\t11/14/2019 8:55:22 AM\tN1\n", "row", "expected 5 tab-separated columns, got 4"),
    ("x4\tU3\t11/14/2019 8:55:22 AM\tN1\tN1-1\n", "impression_id", "not a non-negative integer"),
    ("4\tU3\t11/14/2019 8:55:22 AM\tN1\t\n", "impressions", "no candidates"),
])
def test_bad_behavior_rows_are_named_and_quarantined(tmp_path, line, field, reason):
    d = write_dir(tmp_path, behaviors=BEHAVIORS + line)
    with pytest.raises(DataValidationError) as err:
        prepare(d, tmp_path / "out")
    message = str(err.value)
    assert f"behaviors.tsv:4: field '{field}'" in message and reason in message
    assert not (tmp_path / "out").exists()  # a failed prepare writes nothing
    report = prepare(d, tmp_path / "out", max_bad_fraction=0.5)
    assert report.bad_rows["behaviors.tsv"] == 1 and report.n_impressions == 3
    quarantined = (tmp_path / "out" / "quarantine" / "behaviors.tsv").read_text()
    assert quarantined == line  # kept verbatim
    issues_file = tmp_path / "out" / "quarantine" / "behaviors.tsv.issues.jsonl"
    issues = [json.loads(x) for x in issues_file.read_text().splitlines()]
    assert issues[0]["line"] == 4 and issues[0]["field"] == field


def test_invalid_utf8_and_entity_json_are_reported(tmp_path):
    bad_news = NEWS + 'N4\tnews\tnewsus\tTitle\t\thttps://x/4\t[{"Label": \t[]\n'
    d = write_dir(tmp_path, news=bad_news, behaviors=BEHAVIORS.encode() + b"4\tU\xff\t11/14/2019 8:55:22 AM\t\tN1-1\n")
    tables = read_mind_dir(d)
    news_v, beh_v = tables.validations
    assert [(i.line, i.field) for i in news_v.issues] == [(4, "title_entities")]
    assert "invalid entity JSON" in news_v.issues[0].reason
    assert beh_v.issues[0].line == 4 and "invalid UTF-8 at byte" in beh_v.issues[0].reason
    assert len(tables.news) == 3 and len(tables.histories) == 3


def test_duplicate_news_id_is_an_error(tmp_path):
    d = write_dir(tmp_path, news=NEWS + "N2\tnews\tnewsus\tAgain\t\thttps://x/2\t[]\t[]\n")
    with pytest.raises(DataValidationError,
                       match=r"news.tsv:4: field 'news_id': duplicate news id N2 \(first on line 2\)"):
        prepare(d, tmp_path / "out")


def test_missing_news_are_flagged_not_dropped(tmp_path):
    d = write_dir(tmp_path)
    report = prepare(d, tmp_path / "out")
    assert isinstance(report, PrepareReport)
    imps = load_behaviors(tmp_path / "out").impressions
    assert len(imps) == 7
    assert imps.loc[imps["news_id"] == "N9", "in_catalogue"].tolist() == [False]
    assert report.missing_news.candidate_rows == 1 and report.missing_news.distinct_candidate_ids == 1
    assert report.days == ["2019-11-14", "2019-11-15"]
    assert len(load_news(tmp_path / "out")) == 3


def test_prepare_replaces_output_atomically(tmp_path):
    d = write_dir(tmp_path)
    out = tmp_path / "out"
    prepare(d, out)
    (d / "behaviors.tsv").write_text(BEHAVIORS + "bad line\n")
    with pytest.raises(DataValidationError):
        prepare(d, out)
    assert len(load_behaviors(out).histories) == 3  # the previous version is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mind", "out"]  # no staging debris


def test_unlabelled_candidates_need_opt_in(tmp_path):
    d = write_dir(tmp_path, behaviors="1\tU1\t11/14/2019 8:55:22 AM\tN1\tN3 N2\n")
    _, _, v = read_behaviors(d / "behaviors.tsv")
    assert v.n_bad == 1 and "has no '-0'/'-1' label" in v.issues[0].reason
    imps, _, v = read_behaviors(d / "behaviors.tsv", require_labels=False)
    assert v.n_bad == 0 and list(imps["label"]) == [-1, -1]


SIGNALS = (
    "U2\t11/14/2019 9:00:00 AM\tsearch\tbears comeback win\n"
    "U1\t11/14/2019 9:00:00 AM\tfollow\tfootball_nfl\n"
    "U1\t11/14/2019 8:10:00 AM\tsearch\tstorm coast latest news\n"
)


def test_user_signals_are_read_typed_sorted_and_carried_through_prepare(tmp_path):
    d = write_dir(tmp_path)
    (d / "user_signals.tsv").write_text(SIGNALS, encoding="utf-8")
    frame, v = read_user_signals(d / "user_signals.tsv")
    assert v.n_bad == 0 and v.n_rows == 3
    assert list(frame["user_id"]) == ["U1", "U1", "U2"]  # by (time, user_id)
    assert list(frame["kind"]) == ["search", "follow", "search"] and frame.loc[1, "text"] == "football_nfl"
    assert str(frame["time"].dtype) == "datetime64[s, UTC]" and frame["time"][0].hour == 8
    assert read_mind_dir(d).user_signals.equals(frame)
    report = prepare(d, tmp_path / "out")
    assert report.bad_rows["user_signals.tsv"] == 0
    loaded = load_user_signals(tmp_path / "out")
    assert list(loaded.columns) == list(frame.columns) and loaded.values.tolist() == frame.values.tolist()
    assert str(loaded["time"].dtype).startswith("datetime64[")  # parquet keeps ms, as for the behaviours


def test_absent_user_signals_are_none_and_the_rest_still_works(tmp_path):
    d = write_dir(tmp_path)
    assert read_mind_dir(d).user_signals is None
    report = prepare(d, tmp_path / "out")
    assert load_user_signals(tmp_path / "out") is None
    assert "user_signals.tsv" not in report.bad_rows and report.n_impressions == 3


@pytest.mark.parametrize("line, field, reason", [
    ("U3\t11/14/2019 9:00:00 AM\tclick\tbears\n", "kind", "unknown kind 'click' (expected one of search, follow)"),
    ("U3\t2019-11-14 09:00\tsearch\tbears\n", "time", "unparseable time '2019-11-14 09:00'"),
    ("U3\t11/14/2019 9:00:00 AM\tsearch\t \n", "text", "empty search text"),
    ("U3\t11/14/2019 9:00:00 AM\tsearch\n", "row", "expected 4 tab-separated columns, got 3"),
    ("U 3\t11/14/2019 9:00:00 AM\tfollow\tnewsus\n", "user_id", "invalid user id 'U 3'"),
])
def test_bad_user_signal_rows_are_named_and_quarantined(tmp_path, line, field, reason):
    d = write_dir(tmp_path)
    (d / "user_signals.tsv").write_text(SIGNALS + line, encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        prepare(d, tmp_path / "out")
    assert f"user_signals.tsv:4: field '{field}': {reason}" in str(err.value)
    report = prepare(d, tmp_path / "out", max_bad_fraction=0.5)
    assert report.bad_rows["user_signals.tsv"] == 1 and len(load_user_signals(tmp_path / "out")) == 3
    assert (tmp_path / "out" / "quarantine" / "user_signals.tsv").read_text() == line


@pytest.mark.shared
def test_real_mind_sample(shared_data, tmp_path):
    report = prepare(shared_data / "mind-small-sample", tmp_path / "out")
    assert report.bad_rows == {"news.tsv": 0, "behaviors.tsv": 0}
    assert (report.n_news, report.n_impressions, report.n_candidates, report.n_clicks) == (2000, 5000, 189359, 7542)
    assert report.days == [f"2019-11-{d:02d}" for d in range(9, 15)]
    assert 0.9 < report.missing_news.candidate_fraction < 1.0  # most ids have no text in this sample
    hist = load_behaviors(tmp_path / "out").histories
    assert 0.01 < (hist["history"].map(len) == 0).mean() < 0.05


@pytest.mark.shared
def test_real_adressa_news(shared_data):
    news, v = read_news(shared_data / "adressa-news-sample" / "news.tsv")
    assert v.n_bad == 0 and len(news) == 6085
    assert (news["abstract"] == "").all() and "nyheter" in set(news["category"])

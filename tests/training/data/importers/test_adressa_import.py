"""Adressa importer: raw events -> MIND impressions by the documented sampling rule; MIND news folder normalised."""
import json
from collections import defaultdict

import pytest
from project import REPO_ROOT, run

from training.data.importers.adressa import AdressaOptions, import_adressa
from training.data.importers.input_error import ImportInputError
from training.data.prepare import read_mind_dir


def _events(src):
    return [json.loads(line) for path in sorted(src.iterdir()) for line in path.read_text().splitlines()]


def test_events_become_valid_impressions_by_the_rule(adressa_events_dir, tmp_path):
    report = import_adressa(adressa_events_dir, tmp_path / "out", AdressaOptions(negatives=3, seed=5))
    tables = read_mind_dir(tmp_path / "out")
    assert [v.n_bad for v in tables.validations] == [0, 0, 0]
    events = _events(adressa_events_dir)
    views = sorted((e for e in events if e.get("id")), key=lambda e: (e["time"], e["userId"], e["id"]))
    first, seen = [], set()
    for e in views:
        if (e["userId"], e["id"]) not in seen:
            seen.add((e["userId"], e["id"]))
            first.append(e)
    clicked_by = defaultdict(set)
    hour_articles = defaultdict(set)
    for e in first:
        clicked_by[e["userId"]].add(e["id"])
        hour_articles[e["time"] // 3600].add(e["id"])
    dropped = {k: r.count for k, r in report.dropped_rows.items()}
    assert dropped["pageviews_without_article"] == sum(1 for e in events if not e.get("id"))
    assert dropped["repeat_views"] == len(views) - len(first)
    no_negative = sum(1 for e in first if not hour_articles[e["time"] // 3600] - clicked_by[e["userId"]])
    assert dropped["clicks_without_negative"] == no_negative
    assert report.counts["impressions"] == len(first) - no_negative == len(tables.histories)
    imps = tables.impressions.merge(tables.histories[["impression_id", "history"]], on="impression_id")
    for _, group in imps.groupby("impression_id"):
        user = group["user_id"].iloc[0][1:]
        hour = int(group["time"].iloc[0].timestamp()) // 3600
        pos = group.loc[group["label"] == 1, "news_id"].str[1:].tolist()
        neg = set(group.loc[group["label"] == 0, "news_id"].str[1:])
        assert len(pos) == 1 and 1 <= len(neg) <= 3
        assert neg <= hour_articles[hour] and not neg & clicked_by[user]   # others' clicks, same hour, unseen
        earlier = [f"N{e['id']}" for e in first if e["userId"] == user and (e["time"], e["id"]) <
                   (int(group["time"].iloc[0].timestamp()), pos[0])]
        assert group["history"].iloc[0].tolist() == earlier[-50:]
    assert "SAMPLED" in " ".join(report.notes) and "profile" in report.dropped_columns["event files"]
    assert report.kept_rows_with_caveats["articles_without_title"].examples == ["untitled"]
    profiles = tables.user_profiles.set_index("user_id")
    assert profiles.loc["Ucx:0001", "device"] == "Pc" and profiles.loc["Ucx:0002", "region"] == "sor-trondelag"


def test_sampling_is_reproducible(adressa_events_dir, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        import_adressa(adressa_events_dir, tmp_path / name, AdressaOptions(seed=seed))
    text = {n: (tmp_path / n / "behaviors.tsv").read_text() for n in "abc"}
    assert text["a"] == text["b"] != text["c"]


def test_bad_lines_are_named(adressa_events_dir, tmp_path):
    day = adressa_events_dir / "20170103"
    lines = day.read_text().splitlines()
    day.write_text("\n".join([*lines[:2], '{"userId": "u", "time": 1', *lines[2:]]) + "\n")
    with pytest.raises(ImportInputError, match=r"20170103:3: not a JSON object"):
        import_adressa(adressa_events_dir, tmp_path / "o")
    day.write_text("\n".join([*lines[:4], json.dumps({"userId": "u", "id": "x"}), *lines[4:]]) + "\n")
    with pytest.raises(ImportInputError, match=r"20170103:5: field 'time' missing"):
        import_adressa(adressa_events_dir, tmp_path / "o")
    day.write_text(json.dumps({"userId": "u", "time": "yesterday", "id": "x"}) + "\n")
    with pytest.raises(ImportInputError, match=r"20170103:1: field 'time': expected unix seconds, got 'yesterday'"):
        import_adressa(adressa_events_dir, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_mind_news_folder_is_normalised_and_errors_are_named(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    decomposed = "Bla\u030abær"  # å written as a + combining ring (NFD)
    (src / "news.tsv").write_text(
        f"N1\tnyheter\ttrondheim\t{decomposed} i Trøndelag\t\thttp://a\t\t[]\n"
        'N2\tsport\tfotball\t«Rosenborg» – vant\t\thttp://b\t[{"Label": "Rosenborg", "WikidataId": "Q1"}]\t[]\n')
    (src / "entity_embedding.vec").write_text("Q1\t0.1\t0.2\t\n")
    report = import_adressa(src, tmp_path / "out")
    rows = [line.split("\t") for line in (tmp_path / "out" / "news.tsv").read_text().splitlines()]
    assert rows[0][3] == "Blåbær i Trøndelag" and rows[0][6] == "[]"
    assert (tmp_path / "out" / "entity_embedding.vec").read_text() == "Q1\t0.1\t0.2\n"
    assert report.counts == {"news": 2, "categories": 2, "entities_in_news": 1}
    (tmp_path / "out" / "behaviors.tsv").write_text("1\tU1\t1/1/2017 8:00:00 AM\tN1\tN2-1 N1-0\n")
    assert [v.n_bad for v in read_mind_dir(tmp_path / "out").validations] == [0, 0]  # the news rows pass the reader
    (src / "entity_embedding.vec").write_text("Q1\t0.1\t0.2\nQ2\t0.3\n")
    with pytest.raises(ImportInputError,
                       match=r"entity_embedding\.vec:2: field 'vector': 1 values, earlier lines have 2"):
        import_adressa(src, tmp_path / "o")
    (src / "news.tsv").write_text("N1\tnyheter\tx\ttitle\t\thttp://a\t{bad\t[]\n")
    with pytest.raises(ImportInputError, match=r"news\.tsv:1: field 'title_entities': invalid JSON"):
        import_adressa(src, tmp_path / "o")


@pytest.mark.shared
def test_shared_adressa_news_sample(shared_data, tmp_path):
    src = shared_data / "adressa-news-sample"
    proc = run(["newsforge", "data", "import", "adressa", str(src), str(tmp_path / "out")], REPO_ROOT)
    report = json.loads((tmp_path / "out" / "import_report.json").read_text())
    assert report["counts"]["news"] == 6085 and report["outputs"]["entity_embedding.vec"] == 2734
    assert "news.tsv 6085 rows" in proc.stdout
    assert (tmp_path / "out" / "news.tsv").read_bytes() == (src / "news.tsv").read_bytes()  # already clean

"""EB-NeRD importer: output passes the MIND reader, report counts match an independent count, clear errors."""
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from project import REPO_ROOT, run

from training.data.importers.ebnerd import EbnerdOptions, import_ebnerd
from training.data.importers.input_error import ImportInputError
from training.data.prepare import read_mind_dir


def _expected(src):
    """Count what the importer should keep, straight from the parquet files (first occurrence of an id wins)."""
    beh = pd.concat([pd.read_parquet(src / s / "behaviors.parquet") for s in ("train", "validation")])
    beh = beh.sort_values(["impression_time", "impression_id"], kind="stable")
    dup = beh["impression_id"].duplicated()
    ok = ~dup & beh["article_ids_inview"].map(len).gt(0) & beh["article_ids_clicked"].map(len).gt(0)
    kept = beh[ok]
    cands = kept["article_ids_inview"].map(len).sum()
    clicks = sum(len(set(i) & set(c)) for i, c in zip(kept["article_ids_inview"], kept["article_ids_clicked"]))
    return {"impressions": len(kept), "candidates": int(cands), "clicks": clicks,
            "users": kept["user_id"].nunique(), "duplicates": int(dup.sum())}


def test_import_passes_the_reader_and_counts_match(ebnerd_dir, tmp_path):
    report = import_ebnerd(ebnerd_dir, tmp_path / "out")
    tables = read_mind_dir(tmp_path / "out")
    assert [v.n_bad for v in tables.validations] == [0, 0, 0]  # news, behaviors, user_profiles
    want = _expected(ebnerd_dir)
    assert {k: report.counts[k] for k in ("impressions", "candidates", "clicks", "users")} == \
        {k: want[k] for k in ("impressions", "candidates", "clicks", "users")}
    assert len(tables.histories) == want["impressions"] and len(tables.impressions) == want["candidates"]
    assert int((tables.impressions["label"] == 1).sum()) == want["clicks"]
    assert len(tables.news) == 60 and report.counts["days"][0] == "2023-05-18"
    dropped = {k: (r.count, r.examples) for k, r in report.dropped_rows.items() if r.count}
    assert dropped == {"train:behaviors_no_click": (1, ["900001"]), "train:behaviors_no_candidates": (1, ["900002"]),
                       "train:clicks_not_in_inview": (1, ["900003:1003"]),
                       "validation:behaviors_duplicate_impression_id": (1, ["900004"])}
    caveats = {k: r.examples for k, r in report.kept_rows_with_caveats.items() if r.count}
    assert caveats == {"train:candidates_without_article": ["900003:N5555"], "train:users_without_history": ["U999"]}
    assert report.dropped_columns[str(ebnerd_dir / "articles.parquet")].keys() == {"body", "category",
                                                                                   "published_time", "topics"}
    assert "gender" in report.dropped_columns[str(ebnerd_dir / "train" / "behaviors.parquet")]
    saved = json.loads((tmp_path / "out" / "import_report.json").read_text())
    assert saved["counts"] == report.counts and "UTC" in saved["time_zone"]


def test_fields_are_mapped(ebnerd_dir, tmp_path):
    import_ebnerd(ebnerd_dir, tmp_path / "out")
    tables = read_mind_dir(tmp_path / "out")
    news = tables.news.set_index("news_id")
    assert news.loc["N1003", "title"].endswith(" med tab")  # tab in the source title became a space
    assert news.loc["N1000", "abstract"] == "Underrubrik 0 på dansk" and news.loc["N1000", "subcategory"] == "100"
    labels = [e["Label"] for e in json.loads(news.loc["N1000", "title_entities"])]
    assert labels == ["Mette Frederiksen", "Brøndby"]
    hist = tables.histories.set_index("impression_id")
    # history sorted by impression_time_fixed (hours 5, 1, 3 -> articles in order 1001, 1002, u's)
    assert hist.loc[1, "history"][:2].tolist() == ["N1001", "N1002"]
    assert hist.loc[900004, "history"].tolist() == []                   # user 999 has no history row
    profiles = tables.user_profiles.set_index("user_id")
    assert profiles.loc["U0", "region"] == "metropolitan" and profiles.loc["U1", "region"] == "unknown"
    assert set(profiles["device"]) <= {"desktop", "mobile", "tablet", "unknown"}


def test_time_zone_option_converts_to_utc(ebnerd_dir, tmp_path):
    report = import_ebnerd(ebnerd_dir, tmp_path / "out",
                           EbnerdOptions(splits=("train",), time_zone="Europe/Copenhagen"))
    first = (tmp_path / "out" / "behaviors.tsv").read_text().splitlines()[0].split("\t")
    beh = pd.read_parquet(ebnerd_dir / "train" / "behaviors.parquet").set_index("impression_id")
    local = beh.loc[int(first[0]), "impression_time"]
    utc = pd.Timestamp(local).tz_localize("Europe/Copenhagen").tz_convert("UTC")
    assert first[2] == f"{utc.month}/{utc.day}/{utc.year} {utc.hour % 12 or 12}:{utc.minute:02d}:{utc.second:02d} " \
                       f"{'AM' if utc.hour < 12 else 'PM'}"
    assert "Europe/Copenhagen" in report.time_zone and report.counts["days"][0] == "2023-05-17"


def _rewrite(path, **changes):
    table = pq.read_table(path)
    for name, value in changes.items():
        if value is None:
            table = table.drop_columns([name])
        else:
            table = table.set_column(table.schema.get_field_index(name), name, value)
    pq.write_table(table, path)


def test_missing_file_column_wrong_type_and_null_are_named(ebnerd_dir, tmp_path):
    (ebnerd_dir / "validation" / "history.parquet").unlink()
    with pytest.raises(ImportInputError, match=r"validation/history\.parquet: file not found"):
        import_ebnerd(ebnerd_dir, tmp_path / "o")
    beh = ebnerd_dir / "train" / "behaviors.parquet"
    n = pq.read_metadata(beh).num_rows
    _rewrite(beh, article_ids_clicked=None)
    with pytest.raises(ImportInputError, match=r"train/behaviors\.parquet: missing column\(s\) article_ids_clicked"):
        import_ebnerd(ebnerd_dir, tmp_path / "o", EbnerdOptions(splits=("train",)))
    arts = ebnerd_dir / "articles.parquet"
    _rewrite(arts, title=pa.array(range(pq.read_metadata(arts).num_rows)))
    with pytest.raises(ImportInputError, match=r"articles\.parquet: column 'title' must be a string, got int64"):
        import_ebnerd(ebnerd_dir, tmp_path / "o")
    titles = pq.read_table(arts).column("article_id").to_pylist()
    _rewrite(arts, title=pa.array([str(t) for t in titles]), article_id=pa.array([None, *titles[1:]], pa.int32()))
    with pytest.raises(ImportInputError, match=r"articles\.parquet: row 1: column 'article_id' is null"):
        import_ebnerd(ebnerd_dir, tmp_path / "o")
    assert not (tmp_path / "o").exists() and n > 0  # nothing half-written


def test_cli_import_then_validate(ebnerd_dir, tmp_path):
    proc = run(["newsforge", "data", "import", "ebnerd", str(ebnerd_dir), str(tmp_path / "out")], REPO_ROOT)
    assert "dropped rows:" in proc.stdout and "900001" in proc.stdout and "import_report.json" in proc.stdout
    validated = run(["newsforge", "data", "validate", str(tmp_path / "out")], REPO_ROOT)
    assert "0 bad" in validated.stdout and " bad\n" in validated.stdout
    bad = run(["newsforge", "data", "import", "ebnerd", str(tmp_path / "nowhere"), str(tmp_path / "o2")], REPO_ROOT,
              check=False)
    assert bad.returncode == 2 and "nowhere: not a folder" in bad.stderr

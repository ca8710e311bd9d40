"""EB-NeRD (Ekstra Bladet, RecSys Challenge 2024) -> MIND format.

Input: ``DIR/articles.parquet`` and, per split (``train``, ``validation``), ``DIR/<split>/behaviors.parquet``
and ``DIR/<split>/history.parquet``. Output: ``news.tsv``, ``behaviors.tsv``, ``user_profiles.tsv`` and
``import_report.json`` (see the README's "Other datasets" for the field mapping).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import SupportsInt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from training.data.importers.input_error import ImportInputError
from training.data.importers.mind_writer import behaviors_row, tsv_text, write_rows
from training.data.importers.parquet_input import read_checked
from training.data.importers.report import ImportReport
from training.staging import staged_dir

SPLITS = ("train", "validation")
ARTICLE_COLUMNS = {"article_id": "int", "title": "str", "subtitle": "str", "category_str": "str",
                   "subcategory": "list[int]", "url": "str", "ner_clusters": "list[str]", "entity_groups": "list[str]"}
BEHAVIOR_COLUMNS = {"impression_id": "int", "user_id": "int", "impression_time": "time",
                    "article_ids_inview": "list[int]", "article_ids_clicked": "list[int]",
                    "device_type": "int", "postcode": "int"}
HISTORY_COLUMNS = {"user_id": "int", "impression_time_fixed": "list[time]", "article_id_fixed": "list[int]"}
#: EB-NeRD's codes (dataset documentation); anything else is "unknown".
DEVICE_NAMES = {1: "desktop", 2: "mobile", 3: "tablet"}
POSTCODE_NAMES = {0: "metropolitan", 1: "rural_district", 2: "municipality", 3: "provincial", 4: "big_city"}
NO_COUNTERPART = "no MIND counterpart"


def news_id(article_id: SupportsInt) -> str:
    return f"N{int(article_id)}"


def user_id(uid: SupportsInt) -> str:
    return f"U{int(uid)}"


@dataclass(frozen=True)
class EbnerdOptions:
    splits: tuple[str, ...] | None = None   # None: every split folder present
    time_zone: str = "UTC"                   # zone of EB-NeRD's naive timestamps; written as UTC


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ImportInputError(f"unknown time zone {name!r} (an IANA name such as UTC or Europe/Copenhagen)") from err


def _to_utc(values: pd.Series, zone: ZoneInfo) -> pd.Series:
    values = pd.to_datetime(values)
    if values.dt.tz is None:
        values = values.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return values.dt.tz_convert(UTC)


def _entities(names: Iterable[object] | None, groups: Iterable[object] | None) -> str:
    """ner_clusters (+ entity_groups as Type when aligned) -> MIND entity JSON (no WikidataId in EB-NeRD)."""
    labels = [] if names is None else [str(n) for n in names]
    types = [] if groups is None else [str(g) for g in groups]
    if len(types) != len(labels):
        types = [""] * len(labels)
    return json.dumps([{"Label": n, "Type": g, "WikidataId": "", "Confidence": 1.0,
                        "OccurrenceOffsets": [], "SurfaceForms": [n]} for n, g in zip(labels, types)],
                      ensure_ascii=False)


def _news_rows(articles: pd.DataFrame, file: str, report: ImportReport) -> list[tuple[str, ...]]:
    dup = articles["article_id"].duplicated(keep=False)
    if dup.any():
        lines = (articles.index[dup] + 1).tolist()[:2]
        raise ImportInputError(f"{file}: column 'article_id': duplicate id {articles['article_id'][dup].iloc[0]} "
                               f"(rows {lines[0]} and {lines[1]})")
    rows: list[tuple[str, ...]] = []
    cleaned: Counter[str] = Counter()
    no_category: list[int] = []
    multi_sub = 0
    for r in articles.itertuples(index=False):
        texts = {}
        for column in ("title", "subtitle", "url"):
            texts[column], changed = tsv_text(getattr(r, column))
            cleaned[column] += changed
        category, changed = tsv_text(r.category_str)
        cleaned["category_str"] += changed
        if not category.strip():
            category = "unknown"
            no_category.append(r.article_id)
        subs = [] if r.subcategory is None else list(r.subcategory)
        multi_sub += len(subs) > 1
        rows.append((news_id(r.article_id), category, str(int(subs[0])) if subs else category, texts["title"],
                     texts["subtitle"], texts["url"], _entities(r.ner_clusters, r.entity_groups), "[]"))
    if no_category:
        report.caveat_rows("articles_without_category", file, no_category, "empty category_str: category 'unknown'")
    for column, n in cleaned.items():
        if n:
            report.notes.append(f"{file}: {n} '{column}' value(s) held tabs or line breaks, replaced by spaces")
    if multi_sub:
        report.notes.append(f"{file}: {multi_sub} article(s) list several subcategory ids; the first is kept")
    return rows


def _histories(path: Path, report: ImportReport) -> dict[int, list[str]]:
    """user -> history news ids, oldest first (EB-NeRD's fixed history precedes its behaviors window)."""
    hist, columns = read_checked(path, HISTORY_COLUMNS, not_null=("user_id",))
    report.inputs[str(path)] = len(hist)
    report.drop_columns(str(path), [c for c in columns if c not in HISTORY_COLUMNS], NO_COUNTERPART)
    out: dict[int, list[str]] = {}
    duplicates = []
    for row, (uid, times, articles) in enumerate(zip(hist["user_id"], hist["impression_time_fixed"],
                                                     hist["article_id_fixed"]), start=1):
        times = [] if times is None else list(times)
        articles = [] if articles is None else list(articles)
        if len(times) != len(articles):
            raise ImportInputError(f"{path}: row {row}: 'impression_time_fixed' has {len(times)} entries but "
                                   f"'article_id_fixed' has {len(articles)}")
        if uid in out:
            duplicates.append(user_id(uid))
            continue
        order = sorted(range(len(articles)), key=lambda i: pd.Timestamp(times[i]))
        out[uid] = [news_id(articles[i]) for i in order]
    if duplicates:
        report.drop_rows(f"{path.parent.name}:history_duplicate_users", str(path), duplicates,
                         "second history row of a user (the first is used)")
    return out


def _mode(values: pd.Series, names: dict[int, str]) -> str:
    values = values.dropna().astype(int)
    if values.empty:
        return "unknown"
    counts = values.value_counts()
    best = min(counts.index[counts == counts.max()])  # ties: the smallest code, reproducibly
    return names.get(int(best), "unknown")


def import_ebnerd(source: str | Path, out: str | Path, options: EbnerdOptions = EbnerdOptions()) -> ImportReport:
    """Convert the EB-NeRD folder ``source`` into the MIND folder ``out`` (written atomically)."""
    source, out = Path(source), Path(out)
    zone = _zone(options.time_zone)
    if not source.is_dir():
        raise ImportInputError(f"{source}: not a folder")
    splits = options.splits or tuple(s for s in SPLITS if (source / s).is_dir())
    if not splits:
        raise ImportInputError(f"{source}: no split folder ({' or '.join(SPLITS)}) with behaviors.parquet and "
                               "history.parquet")
    report = ImportReport("ebnerd", str(source), str(out),
                          time_zone=f"EB-NeRD's naive timestamps read as {options.time_zone}, written as UTC; "
                                    "partitions are UTC days")
    _mapping(report)
    articles_path = source / "articles.parquet"
    articles, columns = read_checked(articles_path, ARTICLE_COLUMNS, not_null=("article_id",))
    report.inputs[str(articles_path)] = len(articles)
    report.drop_columns(str(articles_path), [c for c in columns if c not in ARTICLE_COLUMNS], NO_COUNTERPART)
    news = _news_rows(articles, str(articles_path), report)
    catalogue = {row[0] for row in news}

    behaviors, profile_rows, seen_impressions = [], [], set()
    clicks = candidates = 0
    days: set[str] = set()
    for split in splits:
        histories = _histories(source / split / "history.parquet", report)
        path = source / split / "behaviors.parquet"
        beh, columns = read_checked(path, BEHAVIOR_COLUMNS, not_null=("impression_id", "user_id", "impression_time"))
        file = str(path)
        report.inputs[file] = len(beh)
        report.drop_columns(file, [c for c in columns if c not in BEHAVIOR_COLUMNS], NO_COUNTERPART)
        beh["time"] = _to_utc(beh["impression_time"], zone)
        bad_time = beh["time"].isna()
        report.drop_rows(f"{split}:behaviors_nonexistent_local_time", file, beh.loc[bad_time, "impression_id"],
                         f"impression_time does not exist or is ambiguous in {options.time_zone} (DST change)")
        beh = beh[~bad_time].sort_values(["time", "impression_id"], kind="stable")
        dropped: dict[str, list[int | str]] = {k: [] for k in ("duplicate", "no_candidates", "no_click",
                                                                "clicked_not_inview")}
        missing_articles: list[str] = []
        no_history: set[int] = set()
        for r in beh.itertuples(index=False):
            if r.impression_id in seen_impressions:
                dropped["duplicate"].append(r.impression_id)
                continue
            inview = [] if r.article_ids_inview is None else [int(a) for a in r.article_ids_inview]
            clicked = set() if r.article_ids_clicked is None else {int(a) for a in r.article_ids_clicked}
            if not inview:
                dropped["no_candidates"].append(r.impression_id)
                continue
            if not clicked:
                dropped["no_click"].append(r.impression_id)
                continue
            outside = clicked.difference(inview)
            if outside:
                dropped["clicked_not_inview"].extend(f"{r.impression_id}:{a}" for a in sorted(outside))
            if r.user_id not in histories:
                no_history.add(r.user_id)
            cands = [(news_id(a), int(a in clicked)) for a in inview]
            missing_articles.extend(f"{r.impression_id}:{n}" for n, _ in cands if n not in catalogue)
            seen_impressions.add(r.impression_id)
            behaviors.append(behaviors_row(r.impression_id, user_id(r.user_id), r.time.to_pydatetime(),
                                           histories.get(r.user_id, []), cands))
            days.add(r.time.strftime("%Y-%m-%d"))
            clicks += sum(label for _, label in cands)
            candidates += len(cands)
        report.drop_rows(f"{split}:behaviors_duplicate_impression_id", file, dropped["duplicate"],
                         "impression_id already imported (from an earlier row or split)")
        report.drop_rows(f"{split}:behaviors_no_candidates", file, dropped["no_candidates"], "empty article_ids_inview")
        report.drop_rows(f"{split}:behaviors_no_click", file, dropped["no_click"],
                         "impression without any click (MIND impressions have at least one)")
        report.drop_rows(f"{split}:clicks_not_in_inview", file, dropped["clicked_not_inview"],
                         "clicked article (impression:article) not among article_ids_inview: no candidate to label")
        report.caveat_rows(f"{split}:candidates_without_article", file, missing_articles,
                           "candidate (impression:news) missing from articles.parquet: kept, ID-only features")
        report.caveat_rows(f"{split}:users_without_history", file, [user_id(u) for u in sorted(no_history)],
                           f"user without a row in {split}/history.parquet: empty history")
        kept = beh[beh["impression_id"].isin(seen_impressions)]
        profile_rows.append(kept[["user_id", "device_type", "postcode"]])

    profiles = pd.concat(profile_rows, ignore_index=True)
    users = [(user_id(uid), _mode(g["postcode"], POSTCODE_NAMES), _mode(g["device_type"], DEVICE_NAMES))
             for uid, g in profiles.groupby("user_id", sort=True)]
    with staged_dir(out) as staging:
        report.outputs["news.tsv"] = write_rows(staging / "news.tsv", news)
        report.outputs["behaviors.tsv"] = write_rows(staging / "behaviors.tsv", behaviors)
        report.outputs["user_profiles.tsv"] = write_rows(staging / "user_profiles.tsv", users)
        report.counts = {"news": len(news), "impressions": len(behaviors), "candidates": candidates,
                         "clicks": clicks, "users": len(users), "days": sorted(days)}
        report.write(staging)
    return report


def _mapping(report: ImportReport) -> None:
    a, b, h = "articles.parquet", "<split>/behaviors.parquet", "<split>/history.parquet"
    for source, mind, rule in (
        (f"{a}:article_id", "news.tsv:news_id", "'N' + id"),
        (f"{a}:category_str", "news.tsv:category", "'unknown' when empty"),
        (f"{a}:subcategory", "news.tsv:subcategory", "first id of the list; category_str when empty"),
        (f"{a}:title", "news.tsv:title", "tabs/line breaks -> space"),
        (f"{a}:subtitle", "news.tsv:abstract", "tabs/line breaks -> space"),
        (f"{a}:url", "news.tsv:url", "as is"),
        (f"{a}:ner_clusters + entity_groups", "news.tsv:title_entities",
         "Label + Type (aligned lists); no WikidataId; entities of the whole article"),
        ("-", "news.tsv:abstract_entities", "[] (no counterpart)"),
        (f"{b}:impression_id", "behaviors.tsv:impression_id", "as is"),
        (f"{b}:user_id", "behaviors.tsv:user_id", "'U' + id"),
        (f"{b}:impression_time", "behaviors.tsv:time", "time zone option -> UTC, whole seconds"),
        (f"{h}:article_id_fixed (+ impression_time_fixed)", "behaviors.tsv:history",
         "the user's fixed pre-window history, oldest first"),
        (f"{b}:article_ids_inview + article_ids_clicked", "behaviors.tsv:impressions", "N<id>-1 if clicked else -0"),
        (f"{b}:postcode", "user_profiles.tsv:region", "user's most frequent code, named; 'unknown' when null"),
        (f"{b}:device_type", "user_profiles.tsv:device", "user's most frequent code, named (1 desktop, 2 mobile, "
                                                          "3 tablet); else 'unknown'"),
    ):
        report.map_field(source, mind, rule)

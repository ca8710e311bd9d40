"""Adressa (Adresseavisen, Norwegian) -> MIND format.

Two inputs: the raw event logs of the one-week / three-month releases (files of JSON lines, one event per
line), from which impressions are built by sampling negatives (Adressa logs clicks only; see
:func:`build_impressions`), or a folder already in MIND's ``news.tsv`` layout (see
:mod:`training.data.importers.mind_news_folder`), which is normalised and validated.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

import numpy as np

from training.data.importers.input_error import ImportInputError
from training.data.importers.mind_news_folder import import_mind_news_folder
from training.data.importers.mind_writer import behaviors_row, tsv_text, write_rows
from training.data.importers.report import ImportReport
from training.staging import staged_dir

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional
    tqdm = None

T = TypeVar("T")

#: Keys an event must carry; article views also carry ``id``.
REQUIRED_KEYS = ("userId", "time")
MAPPED_KEYS = {"userId", "time", "id", "title", "category0", "category1", "url", "deviceType", "region", "eventId"}


@dataclass(frozen=True)
class AdressaOptions:
    negatives: int = 4        # K negatives sampled per click
    seed: int = 0             # seeds the negative sampling and the candidate order
    max_history: int = 50     # latest earlier clicks kept as the impression's history


@dataclass(frozen=True)
class Click:
    time: int
    user: str
    article: str
    where: str      # "file:line", for the report


def _open(path: Path) -> TextIO:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def event_files(source: Path) -> list[Path]:
    """Every non-hidden file under ``source`` (recursively, sorted), except an earlier import report."""
    files = sorted(p for p in source.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                           p.relative_to(source).parts))
    return [p for p in files if p.name != "import_report.json"]


def _field(event: dict[str, object], key: str, kind: type[T] | tuple[type[T], ...], where: str, expected: str) -> T:
    value = event[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ImportInputError(f"{where}: field '{key}': expected {expected}, got {value!r}")
    return value


#: user -> (device type counts, region counts)
ProfileVotes = defaultdict[str, tuple[Counter[str], Counter[str]]]


def read_events(source: Path, report: ImportReport
                ) -> tuple[list[Click], dict[str, dict[str, str]], ProfileVotes, Counter[str]]:
    """Parse every event; returns (clicks sorted by time, article info, user profile votes, seen-key counts)."""
    clicks: list[Click] = []
    articles: dict[str, dict[str, str]] = {}
    votes: ProfileVotes = defaultdict(lambda: (Counter(), Counter()))
    keys: Counter[str] = Counter()
    pageviews: list[str] = []
    blank: list[str] = []
    files = event_files(source)
    if not files:
        raise ImportInputError(f"{source}: no event files (JSON lines, one Adressa event per line)")
    for path in (tqdm(files, desc="adressa files", unit="file") if tqdm else files):
        n = 0
        with _open(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                n += 1
                where = f"{path}:{line_no}"
                if not line.strip():
                    blank.append(where)
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ImportInputError(f"{where}: not a JSON object ({err.msg} at column {err.colno})") from err
                if not isinstance(event, dict):
                    raise ImportInputError(f"{where}: not a JSON object")
                for key in REQUIRED_KEYS:
                    if key not in event:
                        raise ImportInputError(f"{where}: field '{key}' missing")
                user = _field(event, "userId", str, where, "a string")
                when = _field(event, "time", (int, float), where, "unix seconds")
                keys.update(event.keys())
                article = event.get("id")
                if article is None or article == "":
                    pageviews.append(where)
                    continue
                article = _field(event, "id", str, where, "a string")
                clicks.append(Click(int(when), user, article, where))
                info = articles.setdefault(article, {})
                for key in ("title", "category0", "category1", "url"):
                    if not info.get(key) and isinstance(event.get(key), str) and event[key].strip():
                        info[key] = event[key]
                device, region = votes[user]
                for counter, key in ((device, "deviceType"), (region, "region")):
                    if isinstance(event.get(key), str) and event[key].strip():
                        counter[event[key]] += 1
        report.inputs[str(path)] = n
    report.drop_rows("pageviews_without_article", "event files", pageviews,
                     "event without an article id (a front-page or section pageview): not a click")
    report.drop_rows("blank_lines", "event files", blank, "empty line")
    clicks.sort(key=lambda c: (c.time, c.user, c.article))
    return clicks, articles, votes, keys


def build_impressions(clicks: list[Click], options: AdressaOptions, report: ImportReport) -> list[tuple[str, ...]]:
    """MIND impressions from clicks (the documented rule).

    Each user's first click on an article is a positive; its impression adds up to ``negatives`` articles
    drawn uniformly (seeded) from the articles other users clicked in the same UTC hour that this user never
    clicked in the whole log. The positive's position among them is drawn too. History: the user's earlier
    first-clicks (latest ``max_history``, oldest first). Repeat views are not clicks; clicks with no
    negative available are dropped (both counted in the report) but stay in the user's history.
    """
    rng = np.random.default_rng(options.seed)
    first: list[Click] = []
    seen: set[tuple[str, str]] = set()
    repeats: list[str] = []
    for c in clicks:
        if (c.user, c.article) in seen:
            repeats.append(c.where)
            continue
        seen.add((c.user, c.article))
        first.append(c)
    report.drop_rows("repeat_views", "event files", repeats,
                     "the user had already viewed this article: only the first view is a click")
    by_user: dict[str, set[str]] = defaultdict(set)
    by_hour: dict[int, list[str]] = defaultdict(list)
    for c in first:
        by_user[c.user].add(c.article)
        by_hour[c.time // 3600].append(c.article)
    hour_pool = {h: np.array(sorted(set(a))) for h, a in by_hour.items()}
    history: dict[str, list[str]] = defaultdict(list)
    rows: list[tuple[str, ...]] = []
    no_negative: list[str] = []
    for c in first:
        negatives = _sample(hour_pool[c.time // 3600], by_user[c.user], options.negatives, rng)
        if negatives:
            candidates = [(f"N{a}", 0) for a in negatives]
            candidates.insert(int(rng.integers(0, len(candidates) + 1)), (f"N{c.article}", 1))
            when = datetime.fromtimestamp(c.time, tz=UTC)
            rows.append(behaviors_row(len(rows) + 1, f"U{c.user}", when, history[c.user][-options.max_history:],
                                      candidates))
        else:
            no_negative.append(c.where)
        history[c.user].append(f"N{c.article}")
    report.drop_rows("clicks_without_negative", "event files", no_negative,
                     "no article clicked by others in the same hour that this user never clicked: no impression")
    return rows


def _sample(pool: np.ndarray, clicked: set[str], k: int, rng: np.random.Generator) -> list[str]:
    """Up to ``k`` distinct pool articles not in ``clicked`` (rejection sampling, exact fallback)."""
    chosen: list[str] = []
    for _ in range(8 * k):
        if len(chosen) == k:
            return chosen
        a = str(pool[rng.integers(0, len(pool))])
        if a not in clicked and a not in chosen:
            chosen.append(a)
    rest = [str(a) for a in pool if a not in clicked and a not in chosen]
    extra: Iterable[int] = rng.choice(len(rest), size=min(k - len(chosen), len(rest)), replace=False) if rest else []
    return chosen + [rest[i] for i in extra]


def _news_rows(articles: dict[str, dict[str, str]], report: ImportReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    untitled: list[str] = []
    no_category: list[str] = []
    for article in sorted(articles):
        info = articles[article]
        title, _ = tsv_text(info.get("title"))
        if not title.strip():
            untitled.append(article)
            continue
        category, _ = tsv_text(info.get("category0") or "")
        if not category:
            category = "unknown"
            no_category.append(article)
        sub = (info.get("category1") or "").split("|")[-1].strip()
        rows.append((f"N{article}", category, tsv_text(sub)[0] or category, title, "", tsv_text(info.get("url"))[0],
                     "[]", "[]"))
    report.caveat_rows("articles_without_title", "event files", untitled,
                       "article id never seen with a title: not in news.tsv (its candidates get ID-only features)")
    report.caveat_rows("articles_without_category", "event files", no_category, "no category0: category 'unknown'")
    return rows


def import_adressa(source: str | Path, out: str | Path, options: AdressaOptions = AdressaOptions()) -> ImportReport:
    """Convert Adressa at ``source`` (raw event logs, or a MIND news folder) into ``out`` (written atomically)."""
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise ImportInputError(f"{source}: not a folder")
    if (source / "news.tsv").is_file():
        return import_mind_news_folder(source, out, "adressa")
    if options.negatives < 1:
        raise ImportInputError(f"negatives={options.negatives}: need at least 1")
    report = ImportReport("adressa", str(source), str(out),
                          time_zone="Adressa's 'time' is unix seconds: exact UTC; partitions are UTC days "
                                    "(Norway is UTC+1/+2, so a local day spans two UTC days)")
    report.notes.append(f"negatives are SAMPLED, not logged: Adressa records clicks only. Rule: each first click "
                        f"+ up to {options.negatives} articles clicked by other users in the same UTC hour that "
                        f"this user never clicked (seed {options.seed}); history = the user's "
                        f"{options.max_history} latest earlier clicks")
    clicks, articles, votes, keys = read_events(source, report)
    news = _news_rows(articles, report)
    behaviors = build_impressions(clicks, options, report)
    catalogue = {row[0] for row in news}
    missing = [f"{row[0]}:{token[:-2]}" for row in behaviors for token in row[4].split()
               if token[:-2] not in catalogue]
    report.caveat_rows("candidates_without_article", "event files", missing,
                       "candidate (impression:news) without a title in the logs: kept, ID-only features")
    users = sorted({row[1] for row in behaviors})
    profiles = [(u, _top(votes[u[1:]][1]), _top(votes[u[1:]][0])) for u in users]
    report.drop_columns("event files", sorted(k for k in keys if k not in MAPPED_KEYS), "no MIND counterpart")
    _mapping(report)
    with staged_dir(out) as staging:
        report.outputs["news.tsv"] = write_rows(staging / "news.tsv", news)
        report.outputs["behaviors.tsv"] = write_rows(staging / "behaviors.tsv", behaviors)
        report.outputs["user_profiles.tsv"] = write_rows(staging / "user_profiles.tsv", profiles)
        report.counts = {
            "news": len(news), "impressions": len(behaviors),
            "candidates": sum(len(r[4].split()) for r in behaviors), "clicks": len(behaviors), "users": len(users),
            "days": sorted({datetime.fromtimestamp(c.time, tz=UTC).strftime("%Y-%m-%d") for c in clicks}),
        }
        report.write(staging)
    return report


def _top(counter: Counter[str]) -> str:
    """Most frequent value (ties: alphabetical first); 'unknown' when none. Tabs and line breaks -> space."""
    if not counter:
        return "unknown"
    best = max(counter.values())
    return tsv_text(min(v for v, n in counter.items() if n == best))[0]


def _mapping(report: ImportReport) -> None:
    for source, mind, rule in (
        ("id", "news.tsv:news_id / candidates", "'N' + id"),
        ("category0", "news.tsv:category", "'unknown' when absent"),
        ("category1", "news.tsv:subcategory", "last '|' segment; category0 when absent"),
        ("title", "news.tsv:title", "first non-empty title seen for the article"),
        ("-", "news.tsv:abstract, title_entities, abstract_entities", "empty / []"),
        ("url", "news.tsv:url", "first seen"),
        ("userId", "behaviors.tsv:user_id", "'U' + userId"),
        ("time", "behaviors.tsv:time", "unix seconds -> UTC"),
        ("(derived)", "behaviors.tsv:impression_id", "1.. in click-time order"),
        ("(derived)", "behaviors.tsv:history", "the user's latest earlier first-clicks, oldest first"),
        ("(sampled)", "behaviors.tsv:impressions", "the click (-1) + sampled negatives (-0), see notes"),
        ("region", "user_profiles.tsv:region", "the user's most frequent value; 'unknown' when absent"),
        ("deviceType", "user_profiles.tsv:device", "the user's most frequent value; 'unknown' when absent"),
    ):
        report.map_field(source, mind, rule)

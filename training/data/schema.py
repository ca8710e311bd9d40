"""Column layouts of MIND's TSV files and the typed parquet tables newsforge derives from them.

Ids stay strings at the edges (``N12345``, ``U678``); models map them to contiguous integers
internally and store that mapping beside themselves.
"""
from __future__ import annotations

import pyarrow as pa

#: ``news.tsv``: 8 tab-separated columns, no header.
NEWS_TSV_COLUMNS = (
    "news_id", "category", "subcategory", "title", "abstract", "url",
    "title_entities", "abstract_entities",
)
#: ``behaviors.tsv``: 5 tab-separated columns, no header.
BEHAVIORS_TSV_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")
#: Optional ``user_profiles.tsv`` (not part of MIND; the demo generator may emit it): user_id, then views.
USER_PROFILE_TSV_COLUMNS = ("user_id", "region", "device")
#: Optional ``user_signals.tsv`` (not part of MIND; the demo generator may emit it): one search typed or topic
#: followed per row; ``time`` in MIND_TIME_FORMAT, ``kind`` one of SIGNAL_KINDS, ``text`` the query or topic name.
USER_SIGNALS_TSV = "user_signals.tsv"
USER_SIGNAL_TSV_COLUMNS = ("user_id", "time", "kind", "text")
SIGNAL_KINDS = ("search", "follow")

#: Time format of MIND's behaviors ``time`` column, e.g. ``11/15/2019 8:55:22 AM`` (read as UTC).
MIND_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"

#: news.parquet: the catalogue, one row per news id. Entity columns hold the validated JSON text verbatim.
NEWS_SCHEMA = pa.schema([
    ("news_id", pa.string()),
    ("category", pa.string()),
    ("subcategory", pa.string()),
    ("title", pa.string()),
    ("abstract", pa.string()),          # "" when MIND's abstract is empty
    ("url", pa.string()),
    ("title_entities", pa.string()),    # JSON list, "[]" when empty
    ("abstract_entities", pa.string()),
])

#: impressions.parquet: behaviors exploded to one row per shown candidate.
IMPRESSIONS_SCHEMA = pa.schema([
    ("impression_id", pa.int64()),
    ("user_id", pa.string()),
    ("time", pa.timestamp("s", tz="UTC")),
    ("day", pa.string()),               # partition key, "YYYY-MM-DD" (UTC day of `time`)
    ("position", pa.int32()),           # 0-based position of the candidate in the impression
    ("news_id", pa.string()),
    ("label", pa.int8()),               # 1 clicked, 0 not clicked
    ("in_catalogue", pa.bool_()),       # False: the news id has no row in news.tsv (ID-only features)
])

#: histories.parquet: one row per impression, the click history MIND gives with it.
HISTORIES_SCHEMA = pa.schema([
    ("impression_id", pa.int64()),
    ("user_id", pa.string()),
    ("time", pa.timestamp("s", tz="UTC")),
    ("day", pa.string()),
    ("history", pa.list_(pa.string())),  # oldest first, as in MIND; empty list when MIND's is empty
])

#: user_profiles.parquet (optional): extra user views for the user pre-trainer.
USER_PROFILES_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("region", pa.string()),
    ("device", pa.string()),
])

#: user_signals.parquet (optional): the user signals, sorted by (time, user_id).
USER_SIGNALS_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("time", pa.timestamp("s", tz="UTC")),
    ("kind", pa.string()),               # one of SIGNAL_KINDS
    ("text", pa.string()),               # a search query, or a followed topic (a subcategory name)
])

#: File names inside a prepared-data directory.
NEWS_FILE = "news.parquet"
IMPRESSIONS_FILE = "impressions.parquet"
HISTORIES_FILE = "histories.parquet"
USER_PROFILES_FILE = "user_profiles.parquet"
USER_SIGNALS_FILE = "user_signals.parquet"

"""Stage-1 features of (trigger, candidate) rows: windowed log counts, candidate age, cheap pair features.

Counts come from logs of days **strictly before** a row's day: a window of N days ending the day before
(calendar days ``day - N .. day - 1``), so a training row never sees its own day and a snapshot taken at the
start of a day gives serving exactly what training saw for rows of that day. ``cand_age_hours`` is the row's
time minus the first time the news was shown, counting only days before the row's day too (NaN when it
was never shown before), for the same reason.

Lookups are vectorised: every (key, day) count sits in one array sorted by ``key * DAY_SPAN + day``, with
running sums beside it, so a window sum is two ``searchsorted`` calls and a difference. A (trigger, candidate)
pair is one int64 (``PairIndex``), never a string: the logs hold millions of pairs.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.embedding_table import EmbeddingTable
from training.retrieval.recall_paths import UNION_PATHS

WINDOWS_DAYS = (1, 3, 7)
#: The stage-2 features added to stage 1's: the ranking student's two heads and the CTR model's score
#: (``ctr_score`` is NaN when the user is unknown; LightGBM routes NaN down a learned side).
STAGE2_EXTRA = ("student_click", "student_quality", "ctr_score")
#: CTR smoothing ``(clicks + a) / (shown + b)``: a prior CTR of a / b = 5 % worth b = 20 impressions.
CTR_PRIOR = (1.0, 20.0)

DAY_SPAN = 1 << 20  # day numbers (days since 1970) stay below this in the packed (key, day) sort key
_NS_PER_HOUR = 3_600 * 10**9
NAT_NS = np.iinfo(np.int64).min  #: int64 view of NaT
_COSINE_CHUNK = 32_768  # rows per float64 slab of ``embedding_cosine`` (two slabs of 32 MiB at 128 dimensions)
_SNAPSHOT_FILES = ("candidates.parquet", "pairs.parquet", "first_seen.parquet", "snapshot.json")


def count_feature_names(windows_days: Sequence[int] = WINDOWS_DAYS) -> list[str]:
    """``cand_clicks_Nd, cand_shown_Nd, cand_ctr_Nd`` per window, ``pair_clicks_Nd, pair_shown_Nd`` per
    window, then ``cand_age_hours``."""
    cand = [f"cand_{kind}_{n}d" for n in windows_days for kind in ("clicks", "shown", "ctr")]
    pair = [f"pair_{kind}_{n}d" for n in windows_days for kind in ("clicks", "shown")]
    return cand + pair + ["cand_age_hours"]


def pair_feature_names() -> list[str]:
    """``embedding_cosine`` then ``in_<path>, rank_<path>`` per path of the union (``UNION_PATHS``: their
    membership and rank are the pair features)."""
    return ["embedding_cosine"] + [f"{kind}_{path}" for path in UNION_PATHS for kind in ("in", "rank")]


def _check_windows(windows_days: Sequence[int]) -> tuple[int, ...]:
    windows = tuple(int(n) for n in windows_days)
    if not windows or any(n < 1 for n in windows) or len(set(windows)) != len(windows):
        raise ValueError(f"windows_days must be distinct integers >= 1, got {tuple(windows_days)}")
    return windows


def _day_numbers(days: ArrayLike, name: str = "days") -> np.ndarray:
    """'YYYY-MM-DD' strings -> int64 days since 1970 (parsed once per distinct day)."""
    values = days if isinstance(days, pd.Series) else np.asarray(days, dtype=object).reshape(-1)
    inverse, distinct = pd.factorize(values, use_na_sentinel=False)
    try:
        parsed = pd.to_datetime(pd.Series(np.asarray(distinct, dtype=object)), format="%Y-%m-%d")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be 'YYYY-MM-DD' strings: {exc}") from None
    numbers = parsed.to_numpy("datetime64[D]").astype(np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= DAY_SPAN):
        raise ValueError(f"{name} must fall between 1970 and {1970 + DAY_SPAN // 366}")
    return numbers[inverse.reshape(-1)]


#: One time for every row, or one per row (datetimes, pandas timestamps, datetime64s, ISO strings).
TimeValues = ArrayLike | datetime


def _utc_ns(times: TimeValues, n: int, name: str = "times") -> np.ndarray:
    """UTC nanoseconds of ``times`` (one value broadcast to ``n`` rows, or ``n`` values; naive = UTC); NaT
    becomes ``NAT_NS``."""
    if isinstance(times, datetime) or np.ndim(times) == 0:
        stamp = pd.Timestamp(times)
        if stamp is pd.NaT:
            return np.full(n, NAT_NS, dtype=np.int64)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return np.full(n, stamp.value, dtype=np.int64)
    values = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} rows")
    return values.as_unit("ns").asi8.copy()


def _gather(values: np.ndarray, positions: np.ndarray, default: float = 0.0) -> np.ndarray:
    """``values[positions]`` as float64, ``default`` where a position is -1 (unknown key)."""
    out = np.full(positions.size, default, dtype=np.float64)
    known = positions >= 0
    out[known] = values[positions[known]]
    return out


def _ids(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=object).reshape(-1)


class PairIndex:
    """Distinct (trigger, candidate) pairs, each the int64 ``trigger * n + candidate`` over the ``n`` news ids
    the index was built from, numbered in key order and found by binary search: no string and no hash table
    per pair. Built from pandas string columns it makes no Python object per row either (millions of small
    strings, which the allocator keeps once they are freed)."""

    def __init__(self, news: pd.Index, keys: np.ndarray) -> None:
        self.news = news                  # news position -> news id
        self.keys = keys                  # pair number -> int64 key, sorted
        self._n = max(len(news), 1)

    @classmethod
    def numbered(cls, trigger_ids: ArrayLike, candidate_ids: ArrayLike) -> tuple[PairIndex, np.ndarray]:
        """The index of the given pairs and each input row's pair number (-1: a missing id)."""
        triggers, candidates = pd.Series(trigger_ids), pd.Series(candidate_ids)
        if len(triggers) != len(candidates):
            raise ValueError(f"trigger_ids has {len(triggers)} entries for {len(candidates)} candidate_ids")
        codes, news = pd.factorize(pd.concat([triggers, candidates], ignore_index=True))
        index = cls(pd.Index(np.asarray(news, dtype=object), dtype=object), np.empty(0, dtype=np.int64))
        key = index._key(codes[:len(triggers)], codes[len(triggers):])
        index.keys, rows = np.unique(key[key >= 0], return_inverse=True)
        return index, _scatter(rows, key >= 0)

    def __len__(self) -> int:
        return self.keys.size

    def _key(self, trigger_pos: np.ndarray, candidate_pos: np.ndarray) -> np.ndarray:
        known = (trigger_pos >= 0) & (candidate_pos >= 0)
        return np.where(known, trigger_pos.astype(np.int64) * self._n + candidate_pos, -1)

    def positions(self, trigger_ids: ArrayLike, candidate_ids: ArrayLike) -> np.ndarray:
        """Pair number of each (trigger, candidate); -1 for a pair not in the index."""
        triggers, candidates = _aligned_ids(trigger_ids, candidate_ids)
        key = self._key(self.news.get_indexer(triggers), self.news.get_indexer(candidates))
        found = np.minimum(np.searchsorted(self.keys, key), max(self.keys.size - 1, 0))
        hit = (key >= 0) & (self.keys[found] == key) if self.keys.size else np.zeros(key.size, dtype=bool)
        return np.where(hit, found, -1)

    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(trigger ids, candidate ids) in pair-number order."""
        news = self.news.to_numpy(dtype=object)
        return news[self.keys // self._n], news[self.keys % self._n]


def _scatter(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values`` at the True places of ``where``, -1 elsewhere."""
    out = np.full(where.size, -1, dtype=np.int64)
    out[where] = values.reshape(-1)
    return out


@dataclass(frozen=True)
class _DailyCounts:
    """Clicks and impressions per (key, day), packed and sorted, with running sums for window lookups."""

    packed: np.ndarray          # int64 sorted: key position * DAY_SPAN + day number
    cum_clicks: np.ndarray      # float64 running sums, one longer than ``packed`` (leading 0)
    cum_shown: np.ndarray

    @classmethod
    def from_positions(cls, positions: np.ndarray, day_num: np.ndarray, clicks: np.ndarray) -> _DailyCounts:
        """Counts of rows whose key is at ``positions`` (an index kept beside these counts) on ``day_num``."""
        packed = positions.astype(np.int64) * DAY_SPAN + day_num
        cells, inverse = np.unique(packed, return_inverse=True)
        del packed
        click_sum = np.bincount(inverse, weights=np.asarray(clicks, dtype=np.float64), minlength=cells.size)
        shown_sum = np.bincount(inverse, minlength=cells.size).astype(np.float64)
        return cls(cells, np.concatenate(([0.0], np.cumsum(click_sum))), np.concatenate(([0.0], np.cumsum(shown_sum))))

    def window_sums(self, positions: np.ndarray, day_num: np.ndarray,
                    windows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per window N, (clicks, shown) of days ``day - N .. day - 1`` for key ``positions`` (-1: unknown,
        zeros). The needles are sorted once (searchsorted runs about twice as fast on sorted needles)."""
        known = positions >= 0
        needle = np.where(known, positions, 0).astype(np.int64) * DAY_SPAN + day_num
        order = np.argsort(needle, kind="stable")
        needle, day_sorted = needle[order], day_num[order]
        hi = np.searchsorted(self.packed, needle - 1, side="right")
        out = []
        for n_days in windows:
            # lower bound clipped to the key's base - 1: earlier keys' cells lie at or below it, none of this key's
            lo = np.searchsorted(self.packed, needle - day_sorted + np.maximum(day_sorted - 1 - n_days, -1),
                                 side="right")
            sums = []
            for cum in (self.cum_clicks, self.cum_shown):
                value = np.empty(order.size, dtype=np.float64)
                value[order] = cum[hi] - cum[lo]
                sums.append(np.where(known, value, 0.0))
            out.append((sums[0], sums[1]))
        return out


def _smoothed_ctr(clicks: np.ndarray, shown: np.ndarray, prior: tuple[float, float]) -> np.ndarray:
    return (clicks + prior[0]) / (shown + prior[1])


def _assemble(cand: list[tuple[np.ndarray, np.ndarray]], pair: list[tuple[np.ndarray, np.ndarray]],
              age_hours: np.ndarray, prior: tuple[float, float]) -> np.ndarray:
    columns = []
    for clicks, shown in cand:
        columns += [clicks, shown, _smoothed_ctr(clicks, shown, prior)]
    for clicks, shown in pair:
        columns += [clicks, shown]
    columns.append(age_hours)
    return np.column_stack(columns).astype(np.float32)


def _age_hours(first_seen_ns: np.ndarray, seen: np.ndarray, row_ns: np.ndarray) -> np.ndarray:
    """Hours from first-seen to the row's time; NaN where not ``seen`` or the row's time is missing."""
    ok = seen & (row_ns != NAT_NS)
    return np.where(ok, (row_ns - np.where(ok, first_seen_ns, row_ns)) / _NS_PER_HOUR, np.nan)


class LogCounts:
    """Daily click/impression counts of candidates (all impressions) and of (trigger, candidate) pairs
    (pair logs), plus each news' first-seen time; ``features`` turns them into stage-1 count features."""

    def __init__(self, candidate_keys: pd.Index, candidates: _DailyCounts, pair_keys: PairIndex, pairs: _DailyCounts,
                 first_seen: pd.DataFrame, windows_days: Sequence[int] = WINDOWS_DAYS,
                 ctr_prior: tuple[float, float] = CTR_PRIOR) -> None:
        self.candidate_keys, self.candidates = candidate_keys, candidates
        self.pair_keys, self.pairs = pair_keys, pairs
        #: news_id, first_seen_ns (UTC ns of its first impression), first_day (day number of its first day)
        self.first_seen = first_seen
        self.windows_days = _check_windows(windows_days)
        self.ctr_prior = _check_prior(ctr_prior)
        self._first_index = pd.Index(first_seen["news_id"].to_numpy(object), dtype=object)
        self._first_ns = first_seen["first_seen_ns"].to_numpy(np.int64)
        self._first_day = first_seen["first_day"].to_numpy(np.int64)

    @classmethod
    def from_logs(cls, impressions: pd.DataFrame, pairs: pd.DataFrame, windows_days: Sequence[int] = WINDOWS_DAYS,
                  ctr_prior: tuple[float, float] = CTR_PRIOR) -> LogCounts:
        """Counts of ``impressions`` (``news_id, day, time, label``: every logged candidate row) and ``pairs``
        (``trigger_id, candidate_id, day, clicked``: a ``PairLogs`` frame)."""
        for frame_name, frame, needed in (("impressions", impressions, ("news_id", "day", "time", "label")),
                                          ("pairs", pairs, ("trigger_id", "candidate_id", "day", "clicked"))):
            missing = [c for c in needed if c not in frame.columns]
            if missing:
                raise ValueError(f"{frame_name} lacks column(s) {missing}; expected {list(needed)}")
        # the id and day columns are factorised as they are: no Python object per row (see ``PairIndex``)
        news_pos, news_keys = pd.factorize(impressions["news_id"].reset_index(drop=True))
        day_num = _day_numbers(impressions["day"].reset_index(drop=True))
        candidates = _DailyCounts.from_positions(news_pos, day_num, impressions["label"].to_numpy(np.float64))
        pair_keys, pair_pos = PairIndex.numbered(pairs["trigger_id"], pairs["candidate_id"])
        pair_counts = _DailyCounts.from_positions(pair_pos, _day_numbers(pairs["day"].reset_index(drop=True)),
                                                  pairs["clicked"].to_numpy(np.float64))
        del pair_pos
        times = _utc_ns(impressions["time"], len(impressions), "impressions.time")
        if (times == NAT_NS).any():
            raise ValueError(f"impressions.time is missing on row {int(np.argmax(times == NAT_NS))}")
        first = (pd.DataFrame({"news": news_pos, "first_seen_ns": times, "first_day": day_num})
                 .groupby("news", sort=True).min())
        first.insert(0, "news_id", np.asarray(news_keys, dtype=object)[first.index.to_numpy()])
        first = first[first.index >= 0].sort_values("news_id", kind="stable").reset_index(drop=True)
        return cls(pd.Index(np.asarray(news_keys, dtype=object), dtype=object), candidates, pair_keys, pair_counts,
                   first, windows_days, ctr_prior)

    def feature_names(self) -> list[str]:
        return count_feature_names(self.windows_days)

    def features(self, trigger_ids: ArrayLike, candidate_ids: ArrayLike, days: ArrayLike,
                 times: TimeValues) -> np.ndarray:
        """float32 (n, len(feature_names)): windowed counts of the days before each row's ``day`` and the
        candidate's age in hours at ``times`` (UTC; naive times are taken as UTC)."""
        triggers, candidates = _aligned_ids(trigger_ids, candidate_ids)
        n = candidates.size
        day_num = _day_numbers(days)
        if day_num.size != n:
            raise ValueError(f"days has {day_num.size} entries for {n} candidate_ids")
        cand_pos = self.candidate_keys.get_indexer(candidates)
        pair_pos = self.pair_keys.positions(triggers, candidates)
        cand = self.candidates.window_sums(cand_pos, day_num, self.windows_days)
        pair = self.pairs.window_sums(pair_pos, day_num, self.windows_days)
        seen_pos = self._first_index.get_indexer(candidates)
        known = seen_pos >= 0
        first_ns = np.zeros(n, dtype=np.int64)
        first_ns[known] = self._first_ns[seen_pos[known]]
        seen = _gather(self._first_day.astype(np.float64), seen_pos, default=np.inf) < day_num  # before the row's day
        age = _age_hours(first_ns, seen, _utc_ns(times, n))
        return _assemble(cand, pair, age, self.ctr_prior)

    def snapshot(self, as_of_day: str) -> CountSnapshot:
        """The counts as of the start of ``as_of_day`` (its previous day included) as lookup tables."""
        day = int(_day_numbers([as_of_day], "as_of_day")[0])

        def sums(counts: _DailyCounts, n_keys: int) -> list[tuple[np.ndarray, np.ndarray]]:
            every = np.arange(n_keys)
            return counts.window_sums(every, np.full(every.size, day, dtype=np.int64), self.windows_days)

        cand_frame = _window_frame({"news_id": self.candidate_keys.to_numpy(dtype=object)},
                                   sums(self.candidates, len(self.candidate_keys)), self.windows_days)
        trigger, candidate = self.pair_keys.ids()
        pair_frame = _window_frame({"trigger_id": trigger, "candidate_id": candidate},
                                   sums(self.pairs, len(self.pair_keys)), self.windows_days)
        before = self.first_seen[self.first_seen["first_day"] < day]
        first = before[["news_id", "first_seen_ns"]].reset_index(drop=True)
        return CountSnapshot(as_of_day, self.windows_days, self.ctr_prior, cand_frame, pair_frame, first)


def _check_prior(ctr_prior: Sequence[float]) -> tuple[float, float]:
    a, b = (float(v) for v in ctr_prior)
    if not (a >= 0 and b > 0):
        raise ValueError(f"ctr_prior must be (a >= 0, b > 0), got {tuple(ctr_prior)}")
    return a, b


def _aligned_ids(trigger_ids: ArrayLike, candidate_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    triggers, candidates = _ids(trigger_ids), _ids(candidate_ids)
    if triggers.size != candidates.size:
        raise ValueError(f"trigger_ids has {triggers.size} entries for {candidates.size} candidate_ids")
    return triggers, candidates


def _window_frame(keys: dict[str, np.ndarray], sums: list[tuple[np.ndarray, np.ndarray]],
                  windows: tuple[int, ...]) -> pd.DataFrame:
    """Key columns plus ``clicks_Nd, shown_Nd`` per window, keeping only keys shown in some window."""
    frame = pd.DataFrame(keys)
    any_shown = np.zeros(len(frame), dtype=bool)
    for w, (clicks, shown) in zip(windows, sums):
        frame[f"clicks_{w}d"] = clicks
        frame[f"shown_{w}d"] = shown
        any_shown |= shown > 0
    return frame[any_shown].reset_index(drop=True)


class CountSnapshot:
    """``LogCounts`` frozen at the start of ``as_of_day``: what serving needs for rows of that day."""

    def __init__(self, as_of_day: str, windows_days: Sequence[int], ctr_prior: Sequence[float],
                 candidates: pd.DataFrame, pairs: pd.DataFrame, first_seen: pd.DataFrame) -> None:
        self.as_of_day = str(as_of_day)
        self.windows_days = _check_windows(windows_days)
        self.ctr_prior = _check_prior(ctr_prior)
        self.candidates, self.pairs, self.first_seen = candidates, pairs, first_seen
        _day_numbers([self.as_of_day], "as_of_day")
        self._cand_index = pd.Index(candidates["news_id"].to_numpy(object), dtype=object)
        self._pair_index, numbers = PairIndex.numbered(pairs["trigger_id"], pairs["candidate_id"])
        self._pair_rows = np.full(len(self._pair_index), -1, dtype=np.int64)  # pair number -> row of ``pairs``
        self._pair_rows[numbers[numbers >= 0]] = np.flatnonzero(numbers >= 0)
        self._first_index = pd.Index(first_seen["news_id"].to_numpy(object), dtype=object)
        self._first_ns = first_seen["first_seen_ns"].to_numpy(np.int64)
        self._cand = {c: candidates[c].to_numpy(np.float64) for c in candidates.columns if c != "news_id"}
        self._pair = {c: pairs[c].to_numpy(np.float64) for c in pairs.columns
                      if c not in ("trigger_id", "candidate_id")}

    def feature_names(self) -> list[str]:
        return count_feature_names(self.windows_days)

    def features(self, trigger_ids: ArrayLike, candidate_ids: ArrayLike, time: TimeValues) -> np.ndarray:
        """What ``LogCounts.features`` gives for these rows on ``as_of_day``; ``time``: one UTC time for all
        rows or one per row."""
        triggers, candidates = _aligned_ids(trigger_ids, candidate_ids)
        n = candidates.size
        cand_pos = self._cand_index.get_indexer(candidates)
        pair_pos = self._pair_index.positions(triggers, candidates)
        pair_pos[pair_pos >= 0] = self._pair_rows[pair_pos[pair_pos >= 0]]
        cand = [(_gather(self._cand[f"clicks_{w}d"], cand_pos), _gather(self._cand[f"shown_{w}d"], cand_pos))
                for w in self.windows_days]
        pair = [(_gather(self._pair[f"clicks_{w}d"], pair_pos), _gather(self._pair[f"shown_{w}d"], pair_pos))
                for w in self.windows_days]
        seen_pos = self._first_index.get_indexer(candidates)
        seen = seen_pos >= 0
        first_ns = np.zeros(n, dtype=np.int64)
        first_ns[seen] = self._first_ns[seen_pos[seen]]
        return _assemble(cand, pair, _age_hours(first_ns, seen, _utc_ns(time, n, "time")), self.ctr_prior)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.candidates.to_parquet(directory / _SNAPSHOT_FILES[0], index=False)
        self.pairs.to_parquet(directory / _SNAPSHOT_FILES[1], index=False)
        self.first_seen.to_parquet(directory / _SNAPSHOT_FILES[2], index=False)
        meta = {"as_of_day": self.as_of_day, "windows_days": list(self.windows_days),
                "ctr_prior": list(self.ctr_prior)}
        (directory / _SNAPSHOT_FILES[3]).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CountSnapshot:
        directory = Path(directory)
        missing = [name for name in _SNAPSHOT_FILES if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(f"count snapshot {directory} lacks {missing}")
        meta = json.loads((directory / _SNAPSHOT_FILES[3]).read_text())
        return cls(meta["as_of_day"], meta["windows_days"], meta["ctr_prior"],
                   pd.read_parquet(directory / _SNAPSHOT_FILES[0]), pd.read_parquet(directory / _SNAPSHOT_FILES[1]),
                   pd.read_parquet(directory / _SNAPSHOT_FILES[2]))


class PathRanks:
    """The 1-based rank of each (trigger, candidate) on each recall path, indexed once: ``path_ranks`` is the
    candidate store's frame (``trigger_id, path, rank, news_id``, ``rank`` 0-based as
    ``training.retrieval.recall_paths`` writes it; other paths are ignored); a pair listed twice on a path
    keeps its best rank."""

    def __init__(self, path_ranks: pd.DataFrame) -> None:
        missing = [c for c in ("trigger_id", "path", "rank", "news_id") if c not in path_ranks.columns]
        if missing:
            raise ValueError(f"path_ranks lacks column(s) {missing}; expected trigger_id, path, rank, news_id")
        self._paths: dict[str, tuple[PairIndex, np.ndarray]] = {}
        for path in UNION_PATHS:
            on_path = path_ranks.loc[path_ranks["path"] == path, ["trigger_id", "news_id", "rank"]]
            index, rows = PairIndex.numbered(on_path["trigger_id"], on_path["news_id"])
            best = np.full(len(index), np.inf)
            known = rows >= 0
            np.minimum.at(best, rows[known], on_path["rank"].to_numpy(np.float64)[known])
            self._paths[path] = (index, best + 1.0)

    @classmethod
    def of(cls, path_ranks: PathRanks | pd.DataFrame | None) -> PathRanks | None:
        """``path_ranks`` indexed (a frame) or as given."""
        return cls(path_ranks) if isinstance(path_ranks, pd.DataFrame) else path_ranks

    def ranks(self, trigger_ids: np.ndarray, candidate_ids: np.ndarray) -> list[np.ndarray]:
        """Per path of ``UNION_PATHS``, the candidate's 1-based rank on the trigger's list (NaN: absent)."""
        return [_gather(best, index.positions(trigger_ids, candidate_ids), np.nan)
                for index, best in self._paths.values()]


def pair_features(trigger_ids: ArrayLike, candidate_ids: ArrayLike, news_vectors: EmbeddingTable | None,
                  path_ranks: PathRanks | pd.DataFrame | None) -> tuple[np.ndarray, list[str]]:
    """float32 (n, 7) pair features that need no logs, and their names (``pair_feature_names()``).

    ``embedding_cosine``: cosine of the two news vectors (NaN when either is missing or zero).
    ``in_<path>`` / ``rank_<path>``: whether the candidate is on the trigger's ``path`` list and its 1-based
    rank there (NaN when absent). ``path_ranks``: a ``PathRanks`` (build it once when featurising in
    batches) or the candidate store's frame it is built from; None: absent everywhere.
    """
    triggers, candidates = _aligned_ids(trigger_ids, candidate_ids)
    n = candidates.size
    path_ranks = PathRanks.of(path_ranks)
    ranks = path_ranks.ranks(triggers, candidates) if path_ranks is not None and n else \
        [np.full(n, np.nan) for _ in UNION_PATHS]
    columns = [_cosine(triggers, candidates, news_vectors)]
    for rank in ranks:
        columns += [(~np.isnan(rank)).astype(np.float64), rank]
    return np.column_stack(columns).astype(np.float32).reshape(n, len(columns)), pair_feature_names()


def _cosine(triggers: np.ndarray, candidates: np.ndarray, table: EmbeddingTable | None) -> np.ndarray:
    """float64 cosines, computed ``_COSINE_CHUNK`` rows at a time: gathering every row's two vectors at once
    would take 2 x 8 x dim bytes per row (4 GB for 1.5M rows of 128 dimensions)."""
    out = np.full(triggers.size, np.nan)
    if table is None or triggers.size == 0 or not table.ids:
        return out
    index = pd.Index(table.ids, dtype=object)
    a_pos, b_pos = index.get_indexer(triggers), index.get_indexer(candidates)
    for start in range(0, triggers.size, _COSINE_CHUNK):
        rows = slice(start, start + _COSINE_CHUNK)
        a = table.vectors[np.maximum(a_pos[rows], 0)].astype(np.float64)
        b = table.vectors[np.maximum(b_pos[rows], 0)].astype(np.float64)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        ok = (a_pos[rows] >= 0) & (b_pos[rows] >= 0) & (norms > 0)
        out[rows] = np.where(ok, np.einsum("ij,ij->i", a, b) / np.where(ok, norms, 1.0), np.nan)
    return out

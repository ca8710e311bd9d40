"""Offline evaluation of the recall paths on one day: recall@k of the news clicked next per path and for the
union, the share only Q' finds, recall of fresh news, RecoDCG@5 of each path's top 5, and the comparison
table of query generators (mean ± std over seeds).

Targets are one row per click: the impression's trigger (newest history article) and the clicked news. A
news is *fresh* when it was first shown less than ``fresh_hours`` before the impression: it has no
co-click history yet, which is where content-based paths (embedding, Q') must carry recall.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.metrics.intervals import Interval, paired_difference
from training.metrics.quality import reco_dcg
from training.retrieval.live_news import LiveWindow
from training.retrieval.recall_paths import UNION_PATHS, RecallPath, union_candidates


def fresh_targets(test_pairs: pd.DataFrame, behaviors: BehaviorLog, fresh_hours: float = 24.0) -> pd.DataFrame:
    """Recall targets of the day's pairs (clicked rows): trigger_id, news_id, impression_id, time (of the
    impression), age_hours, fresh."""
    clicked = test_pairs[test_pairs["clicked"] == 1]
    shown = behaviors.impressions
    first_seen = shown.groupby("news_id")["time"].min()
    when = behaviors.histories.set_index("impression_id")["time"]
    times = clicked["impression_id"].map(when)
    if times.isna().any():
        raise ValueError(f"{int(times.isna().sum())} clicked pairs have no impression time in the behaviour log")
    age = (times - clicked["candidate_id"].map(first_seen)).dt.total_seconds().to_numpy() / 3600.0
    return pd.DataFrame({"trigger_id": clicked["trigger_id"].astype(str).to_numpy(),
                         "news_id": clicked["candidate_id"].astype(str).to_numpy(),
                         "impression_id": clicked["impression_id"].to_numpy(),
                         "time": times.to_numpy(), "age_hours": age, "fresh": age < fresh_hours})


def heldout_targets(pair_logs: PairLogs, behaviors: BehaviorLog) -> pd.DataFrame:
    """The held-out recall targets: :func:`fresh_targets` of the partition day's pairs (the ``test`` part)."""
    return fresh_targets(pair_logs.part("test"), behaviors)


def live_found(candidates: pd.DataFrame, targets: pd.DataFrame, ks: Sequence[int],
               window: LiveWindow | None = None) -> dict[int, np.ndarray]:
    """Per k, per target row (in order): whether its news is among its trigger's top-k candidates, counting
    only the candidates live at the target's ``time`` when a ``window`` is given (the service shows what is
    live then: later news are skipped, the list closes up)."""
    for frame, name, columns in ((candidates, "candidates", ("trigger_id", "rank", "news_id")),
                                 (targets, "targets", ("trigger_id", "news_id") + (("time",) if window else ()))):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}")
    wanted = pd.DataFrame({"_row": np.arange(len(targets)), "trigger_id": targets["trigger_id"].astype(str).to_numpy(),
                           "target": targets["news_id"].astype(str).to_numpy()})
    if window is not None:
        wanted["time"] = targets["time"].to_numpy()
    pool = pd.DataFrame({"trigger_id": candidates["trigger_id"].astype(str).to_numpy(),
                         "rank": candidates["rank"].to_numpy(),
                         "news_id": candidates["news_id"].astype(str).to_numpy()})
    rows = wanted.merge(pool.drop_duplicates(["trigger_id", "news_id"]), on="trigger_id")
    if window is not None and len(rows):
        rows = rows[window.live(rows["news_id"].to_numpy(), rows["time"])]
    rows = rows.sort_values(["_row", "rank"], kind="stable")
    position = rows.groupby("_row", sort=False).cumcount().to_numpy()
    hit = (rows["news_id"] == rows["target"]).to_numpy()
    best = pd.Series(position[hit], index=rows["_row"].to_numpy()[hit]).groupby(level=0).min()
    first = np.full(len(targets), np.iinfo(np.int64).max)
    first[best.index.to_numpy(dtype=np.int64)] = best.to_numpy()
    return {k: first < k for k in ks}


@dataclass(frozen=True)
class RecallReport:
    table: pd.DataFrame              # path, recall_at_<k>..., n_targets, fresh_recall_at_30, n_triggers
    only_qprime: float               # share of targets Q' finds at 30 and no other path does
    qprime_trigger_coverage: float   # share of targets whose trigger has Q' candidates
    qprime_vs_random: Interval | None = None   # recall@30(Q') - recall@30(random queries), paired over triggers
    n_paired_triggers: int = 0       # the triggers of that interval (with Q' queries and a click)

    def decision(self) -> str:
        """The protocol's decision (b): Q' beats / ties / loses to random queries at equal coverage."""
        if self.qprime_vs_random is None:
            return "Q' vs random queries: not measured (no trigger with Q' queries and a click)"
        verdicts = {"above 0": "beats", "contains 0": "ties with", "below 0": "loses to"}
        verdict = verdicts[self.qprime_vs_random.verdict()]
        return (f"Q' {verdict} random queries at equal coverage: recall@30 difference "
                f"{self.qprime_vs_random.format(scale=100)} x100 (95 % paired bootstrap over "
                f"{self.n_paired_triggers} triggers)")


#: The rows of the recall table besides the paths: ``RecallPath.UNION``, the set union of the paths' top k (at
#: every k, so it holds each path's hits: recall >= every path's), and ``SERVED``, the list the store serves
#: (round robin, truncated to k).
SERVED = "union_served"


def per_trigger_recall(found: np.ndarray, targets: pd.DataFrame, triggers: Sequence[str]) -> np.ndarray:
    """Recall of each of ``triggers`` (the share of its target rows found), in the given order."""
    frame = pd.DataFrame({"trigger_id": targets["trigger_id"].astype(str).to_numpy(), "found": found})
    means = frame.groupby("trigger_id")["found"].mean()
    missing = [t for t in triggers if t not in means.index]
    if missing:
        raise ValueError(f"{len(missing)} trigger(s) have no target, e.g. {missing[:3]}")
    return means.reindex(list(triggers)).to_numpy(dtype=np.float64)


def recall_report(candidates: pd.DataFrame, targets: pd.DataFrame, ks: Sequence[int] = (10, 30, 100),
                  paths: Sequence[str] = UNION_PATHS, window: LiveWindow | None = None) -> RecallReport:
    """Recall@k per path (live at each click's time with a ``window``), of the union of the paths (the set
    union of their top k: >= every path by construction), of the served round-robin union truncated to k, and
    of the random-queries baseline when ``candidates`` hold it (Q' against it: per-trigger recall@30 over the
    triggers with Q' candidates, paired bootstrap)."""
    ks = tuple(sorted(set(ks) | {30}))
    union, qprime, random = RecallPath.UNION, RecallPath.QPRIME, RecallPath.RANDOM_QUERIES
    extra = [random] if (candidates["path"] == random).any() else []
    per_path = {p: candidates[candidates["path"] == p] for p in (*paths, *extra)}
    per_path[SERVED] = union_candidates(pd.concat([per_path[p] for p in paths], ignore_index=True), order=tuple(paths))
    found = {p: live_found(frame, targets, ks, window) for p, frame in per_path.items()}
    found[union] = {k: np.logical_or.reduce([found[p][k] for p in paths]) if paths else np.zeros(len(targets), bool)
                    for k in ks}
    order = [*paths, union, SERVED, *extra]
    fresh = targets["fresh"].to_numpy(dtype=bool) if "fresh" in targets.columns else np.zeros(len(targets), bool)
    union_triggers = set(per_path[SERVED]["trigger_id"])
    rows = []
    for p in order:
        row = {"path": str(p), **{f"recall_at_{k}": float(found[p][k].mean()) if len(targets) else np.nan for k in ks},
               "n_targets": len(targets),
               "fresh_recall_at_30": float(found[p][30][fresh].mean()) if fresh.any() else np.nan,
               "n_triggers": len(union_triggers) if p == union else int(per_path[p]["trigger_id"].nunique())}
        rows.append(row)
    table = pd.DataFrame(rows)
    only = np.nan
    if qprime in paths and len(targets):
        others = np.logical_or.reduce([found[p][30] for p in paths if p != qprime] or [np.zeros(len(targets), bool)])
        only = float((found[qprime][30] & ~others).mean())
    with_q = set(per_path[qprime]["trigger_id"]) if qprime in per_path else set()
    coverage = float(targets["trigger_id"].isin(with_q).mean()) if len(targets) else np.nan
    interval, n_paired = None, 0
    if extra and with_q:
        paired = sorted(with_q & set(targets["trigger_id"].astype(str)))
        if paired:
            interval = paired_difference(per_trigger_recall(found[qprime][30], targets, paired),
                                         per_trigger_recall(found[random][30], targets, paired))
            n_paired = len(paired)
    return RecallReport(table, float(only), coverage, interval, n_paired)


def path_reco_dcg(candidates: pd.DataFrame, triggers: Sequence[str], news: pd.DataFrame,
                  truth: pd.DataFrame | None, paths: Sequence[str] = UNION_PATHS, k: int = 5) -> pd.DataFrame:
    """RecoDCG@k of each path's top k per trigger and of the served union's, graded by the generator's truth
    (NaN without it)."""
    from training.data.quality_truth import pair_quality

    rows = []
    wanted = set(map(str, triggers))
    for path in (*paths, RecallPath.UNION):
        if path == RecallPath.UNION:   # the union's top k is the served list's
            label, top = SERVED, union_candidates(candidates[candidates["path"].isin(paths)], k=k, order=tuple(paths))
        else:
            label, top = str(path), candidates[(candidates["path"] == path) & (candidates["rank"] < k)]
        top = top[top["trigger_id"].isin(wanted)].sort_values(["trigger_id", "rank"], kind="stable")
        if truth is None or top.empty:
            rows.append({"path": label, f"reco_dcg{k}": np.nan})
            continue
        grades = pair_quality(truth, news, top["trigger_id"], top["news_id"])
        value = reco_dcg(top["trigger_id"].to_numpy(), grades, -top["rank"].to_numpy(np.float64), k)
        rows.append({"path": label, f"reco_dcg{k}": float(value)})
    return pd.DataFrame(rows)


def recall_markdown(table: pd.DataFrame, report: RecallReport) -> str:
    """The recall table (x100) and the Q'-only share, as markdown."""
    recall_columns = [c for c in table.columns if c.startswith("recall_at_")]
    headers = [c.replace("recall_at_", "recall@") for c in recall_columns]
    headers += ["fresh recall@30", "RecoDCG@5", "triggers"]
    lines = ["| path | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for r in table.to_dict("records"):
        cells = [f"{100 * r[c]:.2f}" for c in recall_columns]
        cells.append("n/a" if np.isnan(r["fresh_recall_at_30"]) else f"{100 * r['fresh_recall_at_30']:.2f}")
        cells.append("n/a" if np.isnan(r.get("reco_dcg5", np.nan)) else f"{100 * r['reco_dcg5']:.2f}")
        cells.append(str(r["n_triggers"]))
        lines.append(f"| {r['path']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"`{RecallPath.UNION}`: the set union of the paths' top k at each k (so never below a path); "
                 f"`{SERVED}`: the list the store serves, round robin over the paths, truncated to k. "
                 f"`{RecallPath.RANDOM_QUERIES}`: for each trigger with Q' queries, as many queries, each the title of "
                 "a random live news, retrieved and ranked as Q' (not in the union).")
    lines.append(f"Clicked news found at 30 by Q' and by no other path: {100 * report.only_qprime:.2f}% of "
                 f"{int(table['n_targets'].iloc[0]) if 'n_targets' in table else 0} clicks; "
                 f"{100 * report.qprime_trigger_coverage:.1f}% of clicks follow a trigger with Q' queries.")
    lines.append(report.decision() + ".")
    return "\n".join(lines) + "\n"


COMPARISON_KEYS = ("recall_at_10", "recall_at_30", "malformed_rate", "empty_rate", "duplicate_queries")


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    """Query generators on the same held-out triggers: mean ± std over seeds (x100 for recall and rates)."""
    frame = pd.DataFrame(rows)
    order = list(dict.fromkeys(frame["variant"]))
    headers = ["recall@10", "recall@30", "malformed %", "empty %", "duplicates removed", "seeds"]
    lines = ["| generator | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for variant in order:
        part = frame[frame["variant"] == variant]
        cells = []
        for key in COMPARISON_KEYS:
            scale = 1.0 if key == "duplicate_queries" else 100.0
            mean, std = scale * part[key].mean(), scale * part[key].std(ddof=1) if len(part) > 1 else np.nan
            cells.append(f"{mean:.2f}" if np.isnan(std) else f"{mean:.2f} ± {std:.2f}")
        cells.append(str(len(part)))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

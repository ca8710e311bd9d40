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

import numpy as np
import pandas as pd

from training.data.prepared import BehaviorLog
from training.metrics.quality import reco_dcg
from training.metrics.recall import only_found_by, recall_table
from training.retrieval.recall_paths import union_candidates


def fresh_targets(test_pairs: pd.DataFrame, behaviors: BehaviorLog, fresh_hours: float = 24.0) -> pd.DataFrame:
    """Recall targets of the day's pairs (clicked rows): trigger_id, news_id, impression_id, age_hours, fresh."""
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
                         "age_hours": age, "fresh": age < fresh_hours})


@dataclass(frozen=True)
class RecallReport:
    table: pd.DataFrame              # path, recall_at_<k>..., fresh_recall_at_30, n_triggers
    only_qprime: float               # share of targets Q' finds at 30 and no other path does
    qprime_trigger_coverage: float   # share of targets whose trigger has Q' candidates


def recall_report(candidates: pd.DataFrame, targets: pd.DataFrame, ks: Sequence[int] = (10, 30, 100),
                  paths: Sequence[str] = ("coclick", "embedding", "qprime")) -> RecallReport:
    """Recall per path and for their round-robin union (recomputed here untruncated, so union@100 is defined)."""
    per_path = {p: candidates[candidates["path"] == p] for p in paths}
    per_path["union"] = union_candidates(pd.concat(per_path.values(), ignore_index=True), order=tuple(paths))
    table = recall_table(per_path, targets[["trigger_id", "news_id"]], ks=tuple(ks))
    fresh = targets[targets["fresh"]][["trigger_id", "news_id"]]
    fresh_table = recall_table(per_path, fresh, ks=(30,)) if len(fresh) else None
    table["fresh_recall_at_30"] = (fresh_table.set_index("path")["recall_at_30"].reindex(table["path"]).to_numpy()
                                   if fresh_table is not None else np.nan)
    table["n_triggers"] = [int(per_path[p]["trigger_id"].nunique()) for p in table["path"]]
    others = {p: per_path[p] for p in paths}
    only = only_found_by(others, targets[["trigger_id", "news_id"]], "qprime", 30) if "qprime" in others else np.nan
    with_q = set(per_path["qprime"]["trigger_id"]) if "qprime" in per_path else set()
    coverage = float(targets["trigger_id"].isin(with_q).mean()) if len(targets) else np.nan
    return RecallReport(table, float(only), coverage)


def path_reco_dcg(candidates: pd.DataFrame, triggers: Sequence[str], news: pd.DataFrame,
                  truth: pd.DataFrame | None, paths: Sequence[str] = ("coclick", "embedding", "qprime"),
                  k: int = 5) -> pd.DataFrame:
    """RecoDCG@k of each path's top k per trigger, graded by the generator's truth (NaN without it)."""
    from training.data.quality_truth import pair_quality

    rows = []
    wanted = set(map(str, triggers))
    for path in (*paths, "union"):
        if path == "union":
            top = union_candidates(candidates[candidates["path"].isin(paths)], k=k, order=tuple(paths))
        else:
            top = candidates[(candidates["path"] == path) & (candidates["rank"] < k)]
        top = top[top["trigger_id"].isin(wanted)].sort_values(["trigger_id", "rank"], kind="stable")
        if truth is None or top.empty:
            rows.append({"path": path, f"reco_dcg{k}": np.nan})
            continue
        grades = pair_quality(truth, news, top["trigger_id"], top["news_id"])
        value = reco_dcg(top["trigger_id"].to_numpy(), grades, -top["rank"].to_numpy(np.float64), k)
        rows.append({"path": path, f"reco_dcg{k}": float(value)})
    return pd.DataFrame(rows)


def recall_markdown(table: pd.DataFrame, report: RecallReport) -> str:
    """The recall table (x100) and the Q'-only share, as markdown."""
    recall_columns = [c for c in table.columns if c.startswith("recall_at_")]
    headers = [c.replace("recall_at_", "recall@") for c in recall_columns] + ["fresh recall@30", "RecoDCG@5", "triggers"]
    lines = ["| path | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for r in table.to_dict("records"):
        cells = [f"{100 * r[c]:.2f}" for c in recall_columns]
        cells.append("n/a" if np.isnan(r["fresh_recall_at_30"]) else f"{100 * r['fresh_recall_at_30']:.2f}")
        cells.append("n/a" if np.isnan(r.get("reco_dcg5", np.nan)) else f"{100 * r['reco_dcg5']:.2f}")
        cells.append(str(r["n_triggers"]))
        lines.append(f"| {r['path']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Clicked news found at 30 by Q' and by no other path: {100 * report.only_qprime:.2f}% of "
                 f"{int(table['n_targets'].iloc[0]) if 'n_targets' in table else 0} clicks; "
                 f"{100 * report.qprime_trigger_coverage:.1f}% of clicks follow a trigger with Q' queries.")
    return "\n".join(lines) + "\n"


COMPARISON_KEYS = ("recall_at_10", "recall_at_30", "malformed_rate", "empty_rate", "duplicate_queries")


def comparison_markdown(rows: list[dict]) -> str:
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

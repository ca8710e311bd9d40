"""The evaluation impressions with their quality, the quality-aware ranking metrics of one ranker on them, and
the report of Tables 2-3 (Table 1, the judges': ``training.quality.judge_table``).

Groups are impressions (one trigger each); ``quality`` is the pair's grade on 0-4 (the generator's truth on
demo data, the judge's score otherwise). Figures are on the 0-1 scale; tables show them x100 like the paper.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.data.quality_truth import load_quality_truth, pair_quality
from training.metrics.intervals import Interval, format_mean_std, paired_difference
from training.metrics.quality import (
    click_ndcg,
    click_ndcg_per_group,
    quality_filtered_click_ndcg,
    reco_dcg,
    reco_dcg_per_group,
)

#: The one spelling of these metrics (dict keys, MLflow metric names, table columns).
QUALITY_METRIC_KEYS = ("reco_dcg1", "reco_dcg3", "reco_dcg5", "click_ndcg5", "qf_click_ndcg5")
QUALITY_METRIC_LABELS = {"reco_dcg1": "RecoDCG@1", "reco_dcg3": "RecoDCG@3", "reco_dcg5": "RecoDCG@5",
                         "click_ndcg5": "ClickNDCG@5", "qf_click_ndcg5": "QF-ClickNDCG@5"}
EVAL_COLUMNS = ("impression_id", "trigger_id", "candidate_id", "clicked", "quality")


def sample_impressions(pairs: pd.DataFrame, n_impressions: int, seed: int = 0) -> pd.DataFrame:
    """The pairs of at most ``n_impressions`` impressions (seeded; 0 keeps all), in log order."""
    ids = pairs["impression_id"].unique()
    if 0 < n_impressions < ids.size:
        ids = np.random.default_rng(seed).choice(ids, size=n_impressions, replace=False)
        pairs = pairs[pairs["impression_id"].isin(ids)]
    return pairs.reset_index(drop=True)


def evaluation_pairs(test: pd.DataFrame, news: pd.DataFrame, raw_dir: str | Path, quality_labels: pd.DataFrame,
                     n_impressions: int, seed: int) -> tuple[pd.DataFrame, str]:
    """The partition-day pairs ``test`` of (a sample of, ``sample_impressions``) impressions with their
    ``quality`` and its source: ``"truth"`` (the generator's grade, when ``raw_dir`` holds it) or ``"judge"`` (the
    ``part == "test"`` rows of ``quality_labels``, only impressions whose every pair was judged)."""
    truth = load_quality_truth(raw_dir)
    if truth is not None:
        test = sample_impressions(test, n_impressions, seed)
        return test.assign(quality=pair_quality(truth, news, test["trigger_id"], test["candidate_id"])), "truth"
    judged = quality_labels[quality_labels["part"] == "test"][["trigger_id", "candidate_id", "score"]]
    merged = test.merge(judged.drop_duplicates(["trigger_id", "candidate_id"]), on=["trigger_id", "candidate_id"],
                        how="left")
    complete = merged.groupby("impression_id")["score"].transform(lambda s: s.notna().all())
    merged = merged[complete].rename(columns={"score": "quality"}).reset_index(drop=True)
    if merged.empty:
        raise ValueError("no partition-day impression has judge labels for all its pairs: materialise quality_labels "
                         "for this partition (its eval_impressions), or give a labels_file covering them")
    return sample_impressions(merged, n_impressions, seed), "judge"


def quality_ranking_metrics(pairs: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """RecoDCG@1/3/5, ClickNDCG@5 and quality-filtered ClickNDCG@5 of ranking each impression by ``scores``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pairs),):
        raise ValueError(f"expected {len(pairs)} scores, got shape {scores.shape}")
    groups, clicks, quality = pairs["impression_id"], pairs["clicked"], pairs["quality"]
    out = {f"reco_dcg{k}": reco_dcg(groups, quality, scores, k) for k in (1, 3, 5)}
    out["click_ndcg5"] = click_ndcg(groups, clicks, scores, 5)
    try:
        out["qf_click_ndcg5"] = quality_filtered_click_ndcg(groups, clicks, quality, scores, 5)
    except ValueError:  # every impression's click is low quality: nothing left to measure
        out["qf_click_ndcg5"] = float("nan")
    return out


def summarise(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean and std over seeds per ranker: rows ``{"ranker", "seed", <metric keys>}`` -> one row per ranker
    (in first-seen order) with ``<key>_mean``, ``<key>_std`` (NaN std for a single seed), ``<key>_seeds`` (the
    per-seed figures, a list) and ``n_seeds``."""
    frame = pd.DataFrame(rows)
    order = list(dict.fromkeys(frame["ranker"]))
    grouped = frame.groupby("ranker", sort=False)
    out = pd.DataFrame({"ranker": order})
    for key in QUALITY_METRIC_KEYS:
        out[f"{key}_mean"] = grouped[key].mean().reindex(order).to_numpy()
        out[f"{key}_std"] = grouped[key].std(ddof=1).reindex(order).to_numpy()
        out[f"{key}_seeds"] = [list(map(float, grouped.get_group(name)[key])) for name in order]
    out["n_seeds"] = grouped.size().reindex(order).to_numpy()
    return out


def _cell(per_seed: list[float]) -> str:
    values = np.asarray(per_seed, dtype=np.float64)
    if values.size == 0 or np.isnan(values).any():
        return "n/a"
    return format_mean_std(values, scale=100)


#: differences shown with a paired interval, and their column labels
DIFFERENCE_KEYS = ("reco_dcg5", "click_ndcg5")


def metrics_markdown(summary: pd.DataFrame, baseline: str | None = None,
                     differences: Mapping[str, Mapping[str, Interval]] | None = None) -> str:
    """Markdown table (x100, mean ± std over seeds via ``format_mean_std``). ``baseline`` alone adds a
    ΔRecoDCG@5 column (difference of means); with ``differences`` (``paired_differences``: ranker -> metric key
    -> ``Interval``) the Δ columns show each ranker's mean difference to ``baseline`` with its 95 % paired
    bootstrap interval, for the keys in ``DIFFERENCE_KEYS``."""
    headers = [QUALITY_METRIC_LABELS[k] for k in QUALITY_METRIC_KEYS] + ["seeds"]
    if differences is not None:
        if baseline is None:
            raise ValueError("differences need the baseline they were taken against")
        headers += [f"Δ{QUALITY_METRIC_LABELS[k]} vs {baseline} [95% CI]" for k in DIFFERENCE_KEYS]
    elif baseline is not None:
        headers.append(f"ΔRecoDCG@5 vs {baseline}")
        base = summary.set_index("ranker").loc[baseline, "reco_dcg5_mean"]
    lines = ["| ranker | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for row in summary.itertuples(index=False):
        r = row._asdict()
        cells = [_cell(r[f"{k}_seeds"]) for k in QUALITY_METRIC_KEYS] + [str(r["n_seeds"])]
        if differences is not None:
            if r["ranker"] == baseline:
                cells += ["baseline"] * len(DIFFERENCE_KEYS)
            else:
                given = differences.get(r["ranker"], {})
                cells += [given[k].format(scale=100) if k in given else "n/a" for k in DIFFERENCE_KEYS]
        elif baseline is not None:
            cells.append(f"{100 * (r['reco_dcg5_mean'] - base):+.2f}")
        lines.append(f"| {r['ranker']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def per_impression_metrics(pairs: pd.DataFrame, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Per-impression RecoDCG@5 and ClickNDCG@5 (NaN for an impression without a click) of ranking by
    ``scores``, in order of first appearance: the units of the paired bootstrap."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pairs),):
        raise ValueError(f"expected {len(pairs)} scores, got shape {scores.shape}")
    groups = pairs["impression_id"]
    return {"reco_dcg5": reco_dcg_per_group(groups, pairs["quality"], scores, 5),
            "click_ndcg5": click_ndcg_per_group(groups, pairs["clicked"], scores, 5)}


def stack_seeds(units: Mapping[str, Sequence[Mapping[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """The input of ``paired_differences``: ranker -> key of ``DIFFERENCE_KEYS`` -> ``(seeds, impressions)``, from
    ranker -> one ``per_impression_metrics`` result per seed."""
    empty = [name for name, per_seed in units.items() if not per_seed]
    if empty:
        raise ValueError(f"ranker(s) {empty} have no per-impression values of any seed")
    return {name: {k: np.stack([u[k] for u in per_seed]) for k in DIFFERENCE_KEYS} for name, per_seed in units.items()}


def paired_differences(values: Mapping[str, Mapping[str, np.ndarray]], baseline: str,
                       rankers: list[str] | None = None) -> dict[str, dict[str, Interval]]:
    """Mean of per-seed differences to ``baseline`` with a 95 % paired bootstrap interval over impressions
    (``training.metrics.intervals.paired_difference``), per ranker and metric key.

    ``values``: ranker -> metric key -> per-impression values, ``(impressions,)`` or ``(seeds, impressions)``,
    the same impressions in the same order for every ranker. Impressions where a metric is undefined (NaN:
    ClickNDCG without a click) for either arm are left out of that metric's interval."""
    if baseline not in values:
        raise ValueError(f"baseline {baseline!r} has no per-impression values; rankers: {sorted(values)}")
    out: dict[str, dict[str, Interval]] = {}
    for name in rankers if rankers is not None else list(values):
        if name == baseline:
            continue
        out[name] = {}
        for key, arm in values[name].items():
            a, b = np.atleast_2d(arm), np.atleast_2d(values[baseline][key])
            kept = ~(np.isnan(a).any(axis=0) | np.isnan(b).any(axis=0))
            out[name][key] = paired_difference(a[:, kept], b[:, kept])
    return out


#: the protocol's wording of a paired interval's verdict (``Interval.verdict``)
DECISIONS = {"above 0": "beats", "contains 0": "ties", "below 0": "loses"}


def decision(interval: Interval) -> str:
    """``beats`` / ``ties`` / ``loses``: the interval of (arm − baseline) lies above 0 / contains 0 / lies below."""
    return DECISIONS[interval.verdict()]


def decision_sentence(versus: Interval, n_impressions: int, seeds: str) -> str:
    """Table 3's decision line: ``versus`` is the RecoDCG@5 interval of distilled − direct (``paired_differences``),
    ``seeds`` the seeds it is over (e.g. ``"1, 2"``)."""
    verdict = decision(versus)
    return (f"**Decision** (protocol, Table 3): RecoDCG@5 distilled − direct = {versus.format(scale=100)} "
            f"(x100, mean of per-seed differences, 95 % paired bootstrap over {n_impressions:,} "
            f"impressions, seeds {seeds}): distillation **{verdict}** "
            f"{ {'beats': '', 'ties': 'with ', 'loses': 'to '}[verdict]}direct fine-tuning.\n")


#: columns of ``differences_table``
DIFFERENCE_COLUMNS = ("table", "ranker", "baseline", "metric", "estimate", "low", "high", "std_error")


def differences_table(tables: Iterable[tuple[str, str, Mapping[str, Mapping[str, Interval]]]]) -> pd.DataFrame:
    """Paired differences in long form, one row per (table, ranker, metric key) (``DIFFERENCE_COLUMNS``), from
    (table name, baseline, ``paired_differences`` result) triples."""
    return pd.DataFrame([{"table": table, "ranker": name, "baseline": base, "metric": key, "estimate": iv.estimate,
                          "low": iv.low, "high": iv.high, "std_error": iv.std_error}
                         for table, base, diffs in tables for name, by_key in diffs.items()
                         for key, iv in by_key.items()], columns=list(DIFFERENCE_COLUMNS))


def table_note(n_impressions: int, day: str, seeds: str) -> str:
    """The line under a table: its evaluation units, seeds and interval method."""
    return (f"*{n_impressions:,} impressions of the report day {day}; {seeds}; cells: mean ± std over seeds (x100); "
            "Δ: mean of per-seed differences with a 95 % paired bootstrap interval over impressions "
            "(1,000 resamples, ClickNDCG over impressions with a click).*\n")


def metric_row(name: str, metrics: Mapping[str, float]) -> dict[str, Any]:
    """One row for ``summarise``: ``{"ranker": name, "seed": 0, <metric keys>}`` (set "seed" per seed)."""
    return {"ranker": name, "seed": 0, **{k: float(metrics[k]) for k in QUALITY_METRIC_KEYS}}

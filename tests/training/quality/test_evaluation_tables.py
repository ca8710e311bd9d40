"""Tables 2-3: mean ± std over seeds, paired differences with intervals, the decision (training.quality.evaluation)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.metrics.intervals import Interval
from training.quality.evaluation import (
    decision,
    metric_row,
    metrics_markdown,
    paired_differences,
    per_impression_metrics,
    quality_ranking_metrics,
    summarise,
    table_note,
)


def impressions(n: int = 300, size: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n), size)
    quality = rng.integers(0, 5, n * size).astype(float)
    clicked = (rng.random(n * size) < 0.2).astype(int)
    return pd.DataFrame({"impression_id": ids, "quality": quality, "clicked": clicked})


def test_per_impression_values_average_to_the_table_metrics():
    pairs = impressions()
    scores = np.random.default_rng(1).random(len(pairs))
    units, table = per_impression_metrics(pairs, scores), quality_ranking_metrics(pairs, scores)
    assert units["reco_dcg5"].shape == (300,) and np.mean(units["reco_dcg5"]) == pytest.approx(table["reco_dcg5"])
    assert np.nanmean(units["click_ndcg5"]) == pytest.approx(table["click_ndcg5"])
    with pytest.raises(ValueError, match="expected 1800 scores"):
        per_impression_metrics(pairs, scores[:-1])


def _values(pairs, rankers):
    return {name: {k: np.stack([per_impression_metrics(pairs, s)[k] for s in per_seed])
                   for k in ("reco_dcg5", "click_ndcg5")}
            for name, per_seed in rankers.items()}


def test_differences_decide_beats_ties_and_loses():
    pairs = impressions()
    rng = np.random.default_rng(2)
    q = pairs["quality"].to_numpy()
    rankers = {"base": [rng.random(len(pairs)) for _ in range(2)],
               "good": [q + rng.normal(0, 1, len(pairs)) for _ in range(2)],        # ranks by quality: beats
               "same": [rng.random(len(pairs)) for _ in range(2)],                  # noise like the base: ties
               "bad": [-q + rng.normal(0, 1, len(pairs)) for _ in range(2)]}        # ranks worst first: loses
    diffs = paired_differences(_values(pairs, rankers), "base")
    assert set(diffs) == {"good", "same", "bad"}
    assert [decision(diffs[n]["reco_dcg5"]) for n in ("good", "same", "bad")] == ["beats", "ties", "loses"]
    # the estimate is the mean of per-seed differences of the table metric
    per_seed = [quality_ranking_metrics(pairs, g)["reco_dcg5"] - quality_ranking_metrics(pairs, b)["reco_dcg5"]
                for g, b in zip(rankers["good"], rankers["base"])]
    assert diffs["good"]["reco_dcg5"].estimate == pytest.approx(np.mean(per_seed))
    with pytest.raises(ValueError, match="baseline 'nope'"):
        paired_differences(_values(pairs, rankers), "nope")


def test_tables_show_mean_std_interval_columns_and_the_note():
    pairs = impressions()
    rng = np.random.default_rng(3)
    rows, rankers = [], {}
    for name in ("click-only student", "distilled"):
        for seed in (1, 2):
            scores = rng.random(len(pairs)) + (pairs["quality"].to_numpy() if name == "distilled" else 0)
            rows.append({**metric_row(name, quality_ranking_metrics(pairs, scores)), "seed": seed})
            rankers.setdefault(name, []).append(scores)
    summary = summarise(rows)
    assert summary.loc[0, "reco_dcg5_seeds"] == [rows[0]["reco_dcg5"], rows[1]["reco_dcg5"]]
    diffs = paired_differences(_values(pairs, rankers), "click-only student")
    text = metrics_markdown(summary, "click-only student", diffs)
    header, _, base_row, distilled_row = text.strip().splitlines()
    assert "ΔRecoDCG@5 vs click-only student [95% CI]" in header and "ΔClickNDCG@5" in header
    assert base_row.count("baseline") == 2 and " ± " in base_row
    assert diffs["distilled"]["reco_dcg5"].format(scale=100) in distilled_row
    assert distilled_row.count("[") == 2
    note = table_note(300, "2019-11-14", "students: seeds 1, 2")
    assert "300 impressions" in note and "seeds 1, 2" in note and "paired bootstrap" in note
    # without intervals: the plain difference of means (the trade-off table's use)
    assert "ΔRecoDCG@5 vs click-only student |" in metrics_markdown(summary, "click-only student")
    with pytest.raises(ValueError, match="baseline"):
        metrics_markdown(summary, None, diffs)


def test_single_seed_cells_have_no_std():
    summary = summarise([{**metric_row("one", dict.fromkeys(("reco_dcg1", "reco_dcg3", "reco_dcg5", "click_ndcg5",
                                                             "qf_click_ndcg5"), 0.4123))}])
    assert "| one | 41.23 | 41.23 |" in metrics_markdown(summary)


def test_decision_wording():
    assert decision(Interval(0.02, 0.01, 0.03, 0.005)) == "beats"
    assert decision(Interval(0.0, -0.01, 0.01, 0.005)) == "ties"
    assert decision(Interval(-0.02, -0.03, -0.01, 0.005)) == "loses"

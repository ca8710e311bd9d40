"""Tables 2-3: mean ± std over seeds, paired differences with intervals, the decision (training.quality.evaluation)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.metrics.intervals import Interval
from training.quality.evaluation import (
    DIFFERENCE_COLUMNS,
    decision,
    decision_sentence,
    differences_table,
    metric_row,
    metrics_markdown,
    paired_differences,
    per_impression_metrics,
    quality_ranking_metrics,
    stack_seeds,
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


def test_stacking_seeds_gives_seeds_by_impressions_per_ranker_and_key():
    nan = np.nan
    units = {"a": [{"reco_dcg5": np.array([0.1, 0.2]), "click_ndcg5": np.array([nan, 1.0])},
                   {"reco_dcg5": np.array([0.3, 0.4]), "click_ndcg5": np.array([0.5, nan])}],
             "b": [{"reco_dcg5": np.array([0.5, 0.6]), "click_ndcg5": np.array([1.0, 0.0])}]}
    values = stack_seeds(units)
    np.testing.assert_array_equal(values["a"]["reco_dcg5"], [[0.1, 0.2], [0.3, 0.4]])
    np.testing.assert_array_equal(values["a"]["click_ndcg5"], [[nan, 1.0], [0.5, nan]])
    assert values["b"]["reco_dcg5"].shape == (1, 2) and set(values["b"]) == {"reco_dcg5", "click_ndcg5"}
    with pytest.raises(ValueError, match=r"ranker\(s\) \['c'\] have no per-impression values"):
        stack_seeds({**units, "c": []})


def test_stacked_seeds_give_the_differences_of_per_seed_table_metrics():
    pairs = impressions()
    rng = np.random.default_rng(4)
    scores = {name: [rng.random(len(pairs)) + (pairs["quality"].to_numpy() if name == "arm" else 0)
                     for _ in range(3)] for name in ("base", "arm")}
    units = {name: [per_impression_metrics(pairs, s) for s in per_seed] for name, per_seed in scores.items()}
    diff = paired_differences(stack_seeds(units), "base")["arm"]["reco_dcg5"]
    per_seed = [quality_ranking_metrics(pairs, a)["reco_dcg5"] - quality_ranking_metrics(pairs, b)["reco_dcg5"]
                for a, b in zip(scores["arm"], scores["base"])]
    assert diff.estimate == pytest.approx(np.mean(per_seed))


def test_differences_table_has_one_row_per_table_ranker_and_metric():
    up, down = Interval(0.02, 0.01, 0.03, 0.005), Interval(-0.01, -0.02, 0.0, 0.004)
    table = differences_table([("2", "click teacher", {"q": {"reco_dcg5": up, "click_ndcg5": down}}),
                               ("decision", "direct", {"distilled": {"reco_dcg5": down}})])
    assert table.to_csv(index=False).splitlines() == [
        ",".join(DIFFERENCE_COLUMNS),
        "2,q,click teacher,reco_dcg5,0.02,0.01,0.03,0.005",
        "2,q,click teacher,click_ndcg5,-0.01,-0.02,0.0,0.004",
        "decision,distilled,direct,reco_dcg5,-0.01,-0.02,0.0,0.004"]


@pytest.mark.parametrize("interval, words", [
    (Interval(0.0123, 0.004, 0.02, 0.005), "**beats** direct fine-tuning"),
    (Interval(0.0, -0.01, 0.01, 0.005), "**ties** with direct fine-tuning"),
    (Interval(-0.02, -0.03, -0.01, 0.005), "**loses** to direct fine-tuning"),
])
def test_decision_sentence_states_the_interval_and_the_verdict(interval, words):
    sentence = decision_sentence(interval, 1234, "1, 2")
    assert sentence == ("**Decision** (protocol, Table 3): RecoDCG@5 distilled − direct = "
                        f"{interval.format(scale=100)} (x100, mean of per-seed differences, 95 % paired bootstrap "
                        f"over 1,234 impressions, seeds 1, 2): distillation {words}.\n")
    if words.startswith("**beats"):
        assert "= +1.23 [+0.40, +2.00] (x100" in sentence

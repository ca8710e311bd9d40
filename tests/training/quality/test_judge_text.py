"""What the judge reads: category and source of both articles where the news table knows them, the prompt
wording, and Table 1's PA interval, ceiling and markdown."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.metrics.quality import pairwise_accuracy
from training.prec.news_views import news_source, view_texts
from training.quality.golden_set import balanced_subset, pairwise_accuracy_interval, truth_golden_set
from training.quality.judge_table import judge_markdown
from training.quality.llm_judge import PROMPT_LABEL, PROMPT_REASON, judge_messages, judge_news_text

NEWS = pd.DataFrame({
    "news_id": ["N1", "N2", "N3"],
    "category": ["sports", "finance", "news"],
    "subcategory": ["football_nfl", "markets", "newsus"],
    "title": ["Rangers win the final", "Stocks fall", "Storm hits the coast"],
    "abstract": ["A late goal decides it.", "", "Thousands without power."],
    "url": ["https://www.continentalpress.example/sports/AA1.html",        # demo with visible quality
            "https://assets.msn.com/labs/mind/AA2.html",                    # real MIND: the archive, no source
            ""],
})


def test_category_and_source_are_shown_where_known():
    texts = judge_news_text(NEWS, ["N1", "N2", "N3", "N1"])
    assert texts[0] == ("[category: sports; source: continentalpress.example] "
                        "Rangers win the final. A late goal decides it.")
    assert texts[1] == "[category: finance] Stocks fall"          # no "unknown": the source part is left out
    assert texts[2] == "[category: news] Storm hits the coast. Thousands without power."
    assert texts[3] == texts[0]


def test_a_source_column_wins_and_no_url_means_no_source():
    with_column = NEWS.assign(source=["Continental Press Wire", None, " "])
    assert judge_news_text(with_column, ["N1", "N2", "N3"]) == [
        "[category: sports; source: Continental Press Wire] Rangers win the final. A late goal decides it.",
        "[category: finance] Stocks fall", "[category: news] Storm hits the coast. Thousands without power."]
    assert all("source" not in t for t in judge_news_text(NEWS.drop(columns="url"), ["N1", "N2", "N3"]))


@pytest.mark.parametrize("url, source", [
    ("https://www.dailyledger.example/news/AA1.html", "dailyledger.example"),
    ("https://reuters.com/world/x", "reuters.com"),
    ("https://assets.msn.com/labs/mind/AAGH0ET.html", None),
    ("https://assets.newsforge.example/labs/mind/AA5.html", None),   # the demo without visible quality
    ("", None), (None, None), ("not a url", None)])
def test_news_source_from_url(url, source):
    assert news_source(url) == source


def test_the_cross_encoders_source_view_shows_the_judges_evidence():
    """The ``source`` view (what the teachers and students read beside the title) holds the category and publisher
    that the judge's text shows; the category alone where no publisher is known."""
    (source,) = view_texts(NEWS, ["source"])
    assert source == ["sports continentalpress.example", "finance", "news"]
    assert view_texts(NEWS.assign(source=["Continental Press Wire", None, ""]), ["source"])[0][0] == \
        "sports Continental Press Wire"
    with pytest.raises(KeyError, match="category"):
        view_texts(NEWS.drop(columns="category"), ["source"])


def test_unknown_ids_and_missing_columns_are_named():
    with pytest.raises(ValueError, match="not in the news table.*N9"):
        judge_news_text(NEWS, ["N1", "N9"])
    with pytest.raises(ValueError, match="lacks column.*category"):
        judge_news_text(NEWS.drop(columns="category"), ["N1"])


def test_the_prompts_ask_for_source_authority_and_carry_the_text():
    assert "source" in PROMPT_LABEL and "authority" in PROMPT_LABEL and "source" in PROMPT_REASON
    trigger, candidate = judge_news_text(NEWS, ["N2", "N1"])
    for variant in "ABC":
        _, user = judge_messages(trigger, candidate, variant)
        assert "source: continentalpress.example" in user and "category: finance" in user


# ----------------------------------------------------------------------------- Table 1
def _slow_bootstrap_pa(labels, scores, n_resamples, seed):
    """The protocol's percentile bootstrap written out: resample golden pairs, recompute PA by brute force."""
    def brute_pa(y, p):
        good, total = 0.0, 0
        for i in range(y.size):
            for j in range(y.size):
                if y[i] > y[j]:
                    total += 1
                    good += 1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0
        return good / total
    rng = np.random.default_rng(seed)
    draws = np.concatenate([rng.integers(0, labels.size, size=(min(100, n_resamples - s), labels.size))
                            for s in range(0, n_resamples, 100)])
    values = np.array([brute_pa(labels[idx], scores[idx]) for idx in draws])
    return brute_pa(labels, scores), *np.quantile(values, [0.025, 0.975])


def test_pa_interval_equals_a_brute_force_bootstrap_over_golden_pairs():
    rng = np.random.default_rng(2)
    labels = np.repeat([1, 0], 20)
    scores = np.round(labels + rng.normal(size=40), 1)       # rounded: some tied scores
    interval = pairwise_accuracy_interval(labels, scores, seed=5)
    estimate, low, high = _slow_bootstrap_pa(labels, scores, 1000, seed=5)
    assert interval.estimate == pytest.approx(estimate) == pytest.approx(pairwise_accuracy(labels, scores))
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert interval.low < interval.estimate < interval.high
    with pytest.raises(ValueError, match="equal length"):
        pairwise_accuracy_interval(labels, scores[:-1])


def test_golden_set_carries_the_ceiling_score_and_size_zero_keeps_all():
    pairs = pd.DataFrame({"trigger_id": [f"T{i}" for i in range(12)], "candidate_id": [f"C{i}" for i in range(12)]})
    grades = np.array([0, 1, 3, 4] * 3)
    ceiling = np.arange(12.0)
    golden = truth_golden_set(pairs, grades, 8, perfect_text_scores=ceiling)
    by_pair = dict(zip(pairs["candidate_id"], ceiling))
    assert golden["perfect_text_score"].tolist() == [by_pair[c] for c in golden["candidate_id"]]
    assert truth_golden_set(pairs, grades, 8)["perfect_text_score"].isna().all()
    assert len(balanced_subset(golden, 0)) == len(golden) == 8
    with pytest.raises(ValueError, match="perfect_text_scores"):
        truth_golden_set(pairs, grades, 8, perfect_text_scores=ceiling[:3])


def test_table1_markdown_shows_the_interval_and_the_ceiling():
    table = pd.DataFrame([
        {"judge": "llm B (smollm2)", "pairs": 400, "pairwise_accuracy": 0.6123, "pa_low": 0.5581, "pa_high": 0.6654,
         "pairs_per_second": 1.31, "paper_pa": 0.79, "note": "prompt B"},
        {"judge": "perfect-text ceiling", "pairs": 400, "pairwise_accuracy": 0.9712, "pa_low": 0.9573,
         "pa_high": 0.9830, "pairs_per_second": np.nan, "paper_pa": np.nan, "note": "demo truth"}])
    markdown = judge_markdown(table)
    assert "pairwise accuracy [95 % CI]" in markdown
    assert "| llm B (smollm2) | 400 | 0.612 [0.558, 0.665] | 1.3 | 0.79 | prompt B |" in markdown
    assert "| perfect-text ceiling | 400 | 0.971 [0.957, 0.983] | – | – | demo truth |" in markdown

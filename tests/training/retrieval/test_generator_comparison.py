"""Query generators on the gate's held-out triggers: the gate's slice and index, and the comparison rows of the base
model, the registered generator and the extra LoRA trainings (a tiny causal LM, one LoRA step each)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from builders.slm import tiny_causal_lm

from training.embedding_table import EmbeddingTable
from training.retrieval.generator_comparison import BASE_VARIANT, SFT_VARIANTS, compare_generators
from training.retrieval.generator_gate import gate_triggers
from training.retrieval.live_news import LiveWindow
from training.retrieval.news_index import IndexConfig, NewsIndex
from training.slm.lora_sft import LoraSftConfig, base_version, load_causal_lm
from training.slm.query_generation import GenerationConfig

DAY = "2019-11-14"
CLICK = pd.Timestamp(f"{DAY} 10:00")
HELDOUT = pd.DataFrame({"trigger_id": ["N1", "N2", "N3", "N4", "N4"], "news_id": ["N4", "N7", "N5", "N1", "N2"],
                        "time": [CLICK] * 5})
QUERY_TARGETS = pd.DataFrame({"input_id": ["N1", "N2", "N3"], "query": ["coast storm", "lakers game", "fed rates"],
                              "refined": [True, False, True]})
GENERATION = GenerationConfig(max_new_tokens=6, batch_size=4, torch_threads=1)
LORA = LoraSftConfig(max_steps=1, batch_size=2, max_len=64, seed=7, torch_threads=1)


@pytest.fixture(scope="module")
def gate(catalogue, tiny_news_encoder, tmp_path_factory):
    # N1..N7 first shown the day before (live on DAY), N8 long before
    first = [pd.Timestamp("2019-11-13 08:00")] * 7 + [pd.Timestamp("2019-11-01")]
    window = LiveWindow.from_impressions(pd.DataFrame({"news_id": catalogue["news_id"], "time": first}), 2)
    vectors = EmbeddingTable(catalogue["news_id"].tolist(),
                             np.random.default_rng(0).normal(size=(len(catalogue), 8)).astype(np.float32))
    return gate_triggers(HELDOUT, catalogue, tiny_news_encoder, NewsIndex.build(vectors, IndexConfig(kind="flat")),
                         window, DAY, n_triggers=3, seed=0, per_query=3,
                         vector_cache=tmp_path_factory.mktemp("vectors"))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_gate_triggers_sample_the_heldout_triggers_with_their_clicks_and_the_live_news(gate):
    assert len(gate.triggers) == 3 and set(gate.triggers) <= {"N1", "N2", "N3", "N4"}
    assert gate.prompts["input_id"].tolist() == gate.triggers
    assert set(gate.targets["trigger_id"]) == set(gate.triggers)
    assert len(gate.targets) == HELDOUT["trigger_id"].isin(gate.triggers).sum()
    assert sorted(gate.index.ids) == [f"N{i}" for i in range(1, 8)]          # N8 is not live on the day


def test_comparison_rows_base_registered_then_extra_trainings(gate, base_dir, catalogue, tmp_path):
    loaded = []

    def load_registered():
        model, tokenizer = load_causal_lm(base_dir, torch_threads=1)
        loaded.append(model)
        return SimpleNamespace(model=model, tokenizer=tokenizer, version="registered-1")

    logged: list[str] = []
    rows = compare_generators(gate, base_dir, GENERATION, LORA, "refined", load_registered, QUERY_TARGETS, catalogue,
                              other_targets=True, compare_seeds=[7, 3], cache=tmp_path, log=logged.append)
    assert [(r["variant"], r["seed"]) for r in rows] == [
        (BASE_VARIANT, 0), (SFT_VARIANTS["refined"], 7),           # the registered generator, its own seed
        (SFT_VARIANTS["all"], 7),                                  # other_targets: the other set, same seed
        (SFT_VARIANTS["all"], 3), (SFT_VARIANTS["refined"], 3)]    # seed 7 is the registered one's: not retrained
    for row in rows:
        assert {"recall_at_10", "recall_at_30", "malformed_rate", "empty_rate", "duplicate_queries"} <= set(row)
        assert 0.0 <= row["recall_at_10"] <= row["recall_at_30"] <= 1.0
    assert len(loaded) == 1
    assert [line.split(": recall@30 ")[0] for line in logged] == [
        f"{SFT_VARIANTS['all']}, seed 7", f"{SFT_VARIANTS['all']}, seed 3", f"{SFT_VARIANTS['refined']}, seed 3"]
    # the base model (few-shot) and the registered generator are cached; the one-off trainings are not
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"base-{base_version(base_dir)}", "registered-1"])
    assert [p.name for p in (tmp_path / f"base-{base_version(base_dir)}").iterdir()] == ["news-few-shot"]


def test_comparison_without_extras_trains_nothing_and_checks_the_registered_targets(gate, base_dir, catalogue,
                                                                                     tmp_path):
    def load_registered():
        model, tokenizer = load_causal_lm(base_dir, torch_threads=1)
        return SimpleNamespace(model=model, tokenizer=tokenizer, version="registered-1")

    logged: list[str] = []
    rows = compare_generators(gate, base_dir, GENERATION, LORA, "all", load_registered, QUERY_TARGETS, catalogue,
                              cache=tmp_path, log=logged.append)
    assert [(r["variant"], r["seed"]) for r in rows] == [(BASE_VARIANT, 0), (SFT_VARIANTS["all"], 7)]
    assert logged == []
    with pytest.raises(ValueError, match="registered_targets must be one of"):
        compare_generators(gate, base_dir, GENERATION, LORA, "best", pytest.fail, QUERY_TARGETS, catalogue)

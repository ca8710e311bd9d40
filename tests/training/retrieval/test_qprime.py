"""Q' pieces: queries and news encoded the same way, the Enhanced filter over live news, the random-queries
baseline at equal coverage, prompts with the abstract and the gate's held-out slice."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from training.embedding_table import EmbeddingTable
from training.prec.config import NewsPretrainConfig
from training.prec.encode_cache import encode_news, query_vectors
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder
from training.prec.news_model import build_news_encoder
from training.prec.news_pretrainer import build_tokenizer
from training.prec.news_views import view_texts
from training.retrieval.live_news import LiveWindow
from training.retrieval.news_index import IndexConfig, NewsIndex
from training.retrieval.qprime import (
    QUERY_SPACE,
    gate_slice,
    live_retriever,
    qprime_candidates,
    qprime_index,
    random_queries,
    sft_data,
    title_vectors,
    trigger_messages,
)

T0 = pd.Timestamp("2019-11-14 12:00", tz="UTC")
NEWS = pd.DataFrame({
    "news_id": ["N1", "N2", "N3", "N4", "N5"],
    "title": ["storm hits the coast", "lakers win in overtime", "fed raises rates", "storm damage report",
              "rates and mortgages"],
    "abstract": ["heavy rain and wind", "a late game", "the central bank moved", "", "home loans cost more"],
    "title_entities": ["", "", "", "", ""], "category": ["weather", "sports", "finance", "weather", "finance"],
})


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    config = NewsPretrainConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_len=32,
                                views=("title", "abstract"))
    tokenizer = build_tokenizer(config, view_texts(NEWS, config.views))
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("encoder")
    save_news_encoder(build_news_encoder(config, tokenizer), tokenizer, config, directory)
    return load_news_encoder(directory, "cpu")


def test_news_in_the_query_space_are_encoded_exactly_as_queries(encoder, tmp_path):
    table = title_vectors(encoder, NEWS)
    np.testing.assert_allclose(table.vectors, query_vectors(encoder, NEWS["title"].tolist()), rtol=1e-5, atol=1e-6)
    cached = title_vectors(encoder, NEWS, cache=tmp_path)          # through the content-keyed vector cache
    np.testing.assert_allclose(cached.vectors, table.vectors, rtol=1e-5, atol=1e-6)
    full, _ = encode_news(encoder, NEWS, tmp_path / "full")        # title + abstract: a different vector
    assert not np.allclose(full.vectors[0], table.vectors[0], atol=1e-4)
    # a query equal to a news title retrieves that news at cosine 1 in the query space
    index = qprime_index(encoder, NEWS, NewsIndex.build(full, IndexConfig(kind="flat")), set(NEWS["news_id"]))
    ids, sims = index.search(query_vectors(encoder, ["fed raises rates"]), 1)
    assert QUERY_SPACE == "title" and ids[0] == ["N3"] and sims[0][0] == pytest.approx(1.0, abs=1e-5)
    full_space = qprime_index(encoder, NEWS, NewsIndex.build(full, IndexConfig(kind="flat")), {"N1", "N2"},
                              space="full")
    assert sorted(full_space.ids) == ["N1", "N2"]
    with pytest.raises(ValueError, match="space"):
        qprime_index(encoder, NEWS, index, {"N1"}, space="abstract")


def test_enhanced_retrieval_sees_only_the_news_live_at_each_impression(encoder):
    first = pd.Series({"N1": T0 - pd.Timedelta(hours=3), "N2": T0 - pd.Timedelta(hours=3),
                       "N3": T0 - pd.Timedelta(hours=3), "N4": T0 + pd.Timedelta(hours=5),
                       "N5": T0 - pd.Timedelta(days=5)})
    retrieve = live_retriever(encoder, title_vectors(encoder, NEWS), LiveWindow(first, 2),
                              {"T": [T0], "LATE": [T0 + pd.Timedelta(hours=6)]}, k=1)
    hits = retrieve(["T", "LATE", "NONE"], ["storm damage report", "storm damage report", "storm"])
    # at T0, N4 (shown 5 h later) is not live: its own title finds another live news; later it finds itself
    assert hits[0] != ["N4"] and hits[0][0] in {"N1", "N2", "N3"} and hits[1] == ["N4"] and hits[2] == []
    with pytest.raises(ValueError, match="input ids"):
        retrieve(["T"], [])


def test_random_queries_match_qprime_coverage_and_never_use_the_trigger():
    queries = pd.DataFrame({"input_id": ["N1", "N1", "N1", "N2"], "query_rank": [0, 1, 2, 0],
                            "query": ["a b", "c d", "e f", "g h"]})
    pool = {"N1", "N2", "N3", "N4"}
    out = random_queries(queries, NEWS, pool, seed=3)
    assert out.groupby("input_id").size().to_dict() == {"N1": 3, "N2": 1}
    titles = NEWS.set_index("news_id")["title"]
    assert set(out["query"]) <= set(titles[sorted(pool)])
    assert titles["N1"] not in set(out.loc[out["input_id"] == "N1", "query"])
    assert titles["N2"] not in set(out.loc[out["input_id"] == "N2", "query"])
    assert out.equals(random_queries(queries, NEWS, pool, seed=3))
    with pytest.raises(ValueError, match="at least 2"):
        random_queries(queries, NEWS, {"N1"})


def test_random_baseline_is_retrieved_like_qprime(encoder):
    queries = pd.DataFrame({"input_id": ["N1", "N1", "N2"], "query_rank": [0, 1, 0], "query": ["x y", "z w", "q r"]})
    full = EmbeddingTable(list(NEWS["news_id"]), np.eye(5, 8, dtype=np.float32))
    index = qprime_index(encoder, NEWS, NewsIndex.build(full, IndexConfig(kind="flat")), set(NEWS["news_id"]))
    baseline = qprime_candidates(random_queries(queries, NEWS, set(NEWS["news_id"]), 0), encoder, index,
                                 per_query=2, keep=30, path="random_queries")
    assert set(baseline["trigger_id"]) == {"N1", "N2"} and set(baseline["path"]) == {"random_queries"}
    assert not (baseline["trigger_id"] == baseline["news_id"]).any()


def test_trigger_prompts_show_the_abstract_by_default():
    messages = trigger_messages(NEWS, ["N3", "N4"])
    assert "Abstract: the central bank moved" in messages["message"].iloc[0]
    assert "Abstract" not in messages["message"].iloc[1]                       # N4 has none
    assert "Abstract" not in trigger_messages(NEWS, ["N3"], with_abstract=False)["message"].iloc[0]
    with pytest.raises(KeyError, match="not in the news catalogue"):
        trigger_messages(NEWS, ["NOPE"])


def test_gate_slice_samples_triggers_with_their_clicks():
    targets = pd.DataFrame({"trigger_id": ["A", "A", "B", "C", "D"], "news_id": list("vwxyz"), "time": [T0] * 5})
    triggers, heldout = gate_slice(targets, 2, seed=1)
    assert len(triggers) == 2 and set(heldout["trigger_id"]) == set(triggers)
    assert len(heldout) == targets["trigger_id"].isin(triggers).sum() and "time" in heldout
    assert gate_slice(targets, 0, seed=1)[0] == ["A", "B", "C", "D"]


def test_sft_data_groups_targets_per_trigger_with_the_shared_prompt():
    targets = pd.DataFrame({"input_id": ["N1", "N1", "N3"], "query": ["storm path", "coast damage", "rate hike"],
                            "refined": [True, False, False]})
    messages, answers = sft_data(targets, NEWS, "all")
    assert answers == ["storm path\ncoast damage", "rate hike"]
    assert messages == trigger_messages(NEWS, ["N1", "N3"])["message"].tolist()
    assert "Abstract: heavy rain and wind" in messages[0]
    assert sft_data(targets, NEWS, "refined")[1] == ["storm path"]
    with pytest.raises(ValueError, match="no refined targets"):
        sft_data(targets.assign(refined=False), NEWS, "refined")
    with pytest.raises(ValueError, match="targets must be"):
        sft_data(targets, NEWS, "best")

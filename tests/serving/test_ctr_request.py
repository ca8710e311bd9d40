"""CtrRequestScorer against the pandas reference path (``CtrPyfunc.predict``) on single impressions."""
from __future__ import annotations

import datetime
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from serving.ctr_model import CtrPyfunc, tables_from_rows
from serving.ctr_request import CtrRequestScorer
from training.ctr import (
    PAD,
    CtrConfig,
    CtrPredictor,
    FeatureSpace,
    build_model,
    train_ctr_model,
)
from training.embedding_table import EmbeddingTable

torch.set_num_threads(1)
SYNTH = SyntheticCtrConfig(num_users=40, num_news=80, train_days=2, impressions_per_day=100, seed=1)
TRAIN, VALID = make_synthetic_ctr_data(SYNTH)
HISTORY_LENGTH = 5
SMALL = {"embedding_dim": 8, "mlp_hidden": (32, 16), "history_length": HISTORY_LENGTH, "progress_bar": False}
UTC = datetime.UTC
VALID_TIME = VALID.impressions["time"].iloc[0].to_pydatetime()


def _pyfunc(predictor: CtrPredictor, news: pd.DataFrame = TRAIN.news) -> CtrPyfunc:
    model = CtrPyfunc()
    model.predictor, model.news = predictor, news
    return model


def _random_predictor(name: str, prec: str) -> CtrPredictor:
    """An untrained model whose embeddings are scaled up, so every feature moves the score visibly."""
    cfg = CtrConfig(model=name, prec=prec, **SMALL)
    space = FeatureSpace.fit(TRAIN, cfg)
    torch.manual_seed(0)
    model = build_model(cfg, space.field_sizes(), TRAIN.news_embeddings.dim if cfg.uses_news_vectors else None,
                        TRAIN.user_embeddings.dim if cfg.uses_user_vectors else None)
    with torch.no_grad():
        for table in model.embedding.tables.values():
            table.weight.normal_(std=0.5)
            table.weight[PAD].zero_()
        for layer in (model.news_vector, model.user_vector):
            if layer is not None:
                layer.missing.normal_(std=0.5)
    return CtrPredictor(model, space, cfg, TRAIN.news_embeddings, TRAIN.user_embeddings)


VARIANTS = [(name, prec) for name in ("dcn", "deepfm", "pnn") for prec in ("none", "news", "news+user")]


@pytest.fixture(scope="module", params=VARIANTS, ids=["-".join(v) for v in VARIANTS])
def predictor(request) -> CtrPredictor:
    return _random_predictor(*request.param)


@pytest.fixture(scope="module")
def trained_predictor(tmp_path_factory) -> CtrPredictor:
    """A real 1-epoch artefact, saved and loaded back (first-seen times go through parquet)."""
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    out = tmp_path_factory.mktemp("ctr_request_model")
    cfg = CtrConfig(model="dcn", prec="news+user", max_epochs=1, batch_size=256, **SMALL)
    train_ctr_model(TRAIN, VALID, cfg, out)
    return CtrPredictor.load(out)


# --- the ids the request cases use, checked to be what their names say -------------------------------------
_space = FeatureSpace.fit(TRAIN, CtrConfig(**SMALL))
_news_vocab = set(_space.vocabularies["news_id"].values)
_user_vocab = set(_space.vocabularies["user_id"].values)
_catalogue = set(TRAIN.news["news_id"])
_valid_news = pd.unique(VALID.impressions["news_id"])
KNOWN_NEWS = [n for n in _valid_news if n in _news_vocab and n in _catalogue][:6]
OFF_CATALOGUE = [n for n in _valid_news if n not in _catalogue][:2]
CATALOGUE_UNSEEN = [n for n in _valid_news if n in _catalogue and n not in _news_vocab][:2]
KNOWN_USER = next(u for u in VALID.impressions["user_id"] if u in _user_vocab)
VECTOR_ONLY_USER = next(u for u in TRAIN.user_embeddings.ids if u not in _user_vocab)  # cold, but has a vector
LONG_HISTORY = [n for h in TRAIN.histories["history"] for n in h][:12] + ["N_unknown", KNOWN_NEWS[0]]
CANDIDATES = [*KNOWN_NEWS, *OFF_CATALOGUE, *CATALOGUE_UNSEEN, "N_nowhere", KNOWN_NEWS[0], OFF_CATALOGUE[0]]
EARLIEST = TRAIN.impressions["time"].min().to_pydatetime()
FIRST_SEEN = datetime.datetime.fromtimestamp(_space.first_seen[KNOWN_NEWS[0]], UTC)
AGE_HOURS = (0.5, 1.0, 3.0, 30.0, 100.0, 200.0)  # 1.0: exactly on a bucket edge

CASES = {
    "known_user_long_history": (KNOWN_USER, LONG_HISTORY, CANDIDATES, VALID_TIME),
    "known_user_short_history": (KNOWN_USER, LONG_HISTORY[:3], CANDIDATES, VALID_TIME),
    "cold_user_empty_history": ("U_cold", [], CANDIDATES, VALID_TIME),
    "vector_only_user": (VECTOR_ONLY_USER, LONG_HISTORY[4:9], CANDIDATES, VALID_TIME),
    "no_time": (KNOWN_USER, LONG_HISTORY, CANDIDATES, None),
    "naive_time_sub_second": (KNOWN_USER, LONG_HISTORY, CANDIDATES,
                              VALID_TIME.replace(tzinfo=None, microsecond=123457)),
    "offset_time_other_day": (KNOWN_USER, LONG_HISTORY, CANDIDATES,
                              datetime.datetime(2019, 11, 11, 2, 30, tzinfo=datetime.timezone(
                                  datetime.timedelta(hours=5, minutes=30)))),
    **{f"age_{h}h": (KNOWN_USER, LONG_HISTORY, KNOWN_NEWS, FIRST_SEEN + datetime.timedelta(hours=h))
       for h in AGE_HOURS},
    "before_training": (KNOWN_USER, [], KNOWN_NEWS, EARLIEST - datetime.timedelta(days=2)),
    "far_future": (KNOWN_USER, [], CANDIDATES, VALID_TIME + datetime.timedelta(days=30)),
    "single_candidate": ("U_cold", LONG_HISTORY, ["N_nowhere"], VALID_TIME),
}


def test_request_cases_cover_what_their_names_say():
    assert len(KNOWN_NEWS) == 6 and OFF_CATALOGUE and CATALOGUE_UNSEEN
    assert VECTOR_ONLY_USER in TRAIN.user_embeddings.ids and "U_cold" not in TRAIN.user_embeddings.ids
    assert len(LONG_HISTORY) > HISTORY_LENGTH and "N_unknown" not in _news_vocab
    assert KNOWN_USER in _user_vocab and "N_nowhere" not in _catalogue


def _rows(user_id: str, history: list[str], candidates: list[str], time: datetime.datetime | None) -> pd.DataFrame:
    """The pyfunc input rows of one impression, as the service would send them."""
    return pd.DataFrame({"impression_id": 7, "user_id": user_id,
                         "time": None if time is None else time.isoformat(),
                         "news_id": candidates, "history": " ".join(history)})


def _tables(*request) -> tuple[pd.DataFrame, pd.DataFrame]:
    return tables_from_rows(_rows(*request))


def _reference(pyfunc: CtrPyfunc, *request) -> np.ndarray:
    return pyfunc.predict(None, _rows(*request))


@pytest.mark.parametrize("case", sorted(CASES))
def test_scores_match_the_pyfunc(predictor, case):
    scorer = CtrRequestScorer.from_pyfunc(_pyfunc(predictor))
    scores, _ = scorer.score(*CASES[case])
    expected = _reference(_pyfunc(predictor), *CASES[case])
    assert scores.dtype == np.float32 and scores.shape == expected.shape
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_inputs_equal_the_feature_space_tensors(trained_predictor, case):
    scorer = CtrRequestScorer(trained_predictor, TRAIN.news)
    got = scorer.model_inputs(*CASES[case])
    imps, hist = _tables(*CASES[case])
    feats = trained_predictor.featurize(imps, hist, TRAIN.news)
    want = feats.batch(torch.arange(len(feats)))
    for key in ("fields", "history", "news_vector_row", "user_vector_row"):
        assert got[key].dtype == torch.int64 and torch.equal(got[key], want[key]), key


def test_one_forward_of_many_requests_equals_each_request_scored_alone(predictor):
    """``probabilities`` pools each request's history once (``SharedHistory``): the concatenated scores of a
    batch of requests (cold, long, empty and duplicated histories, no time) equal each ``score``."""
    scorer = CtrRequestScorer(predictor, TRAIN.news)
    cases = [CASES[name] for name in ("known_user_long_history", "cold_user_empty_history", "no_time",
                                      "single_candidate", "vector_only_user", "known_user_long_history")]
    batched = scorer.probabilities([scorer.request_inputs(*case) for case in cases])
    alone = np.concatenate([scorer.score(*case)[0] for case in cases])
    assert batched.dtype == np.float32 and batched.shape == alone.shape
    np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-6)


def test_trained_artefact_scores_match_and_features_vary(trained_predictor):
    scorer = CtrRequestScorer.from_pyfunc(_pyfunc(trained_predictor))
    for request in CASES.values():
        np.testing.assert_allclose(scorer.score(*request)[0], _reference(_pyfunc(trained_predictor), *request),
                                   rtol=0, atol=1e-6)
    ages = [scorer.model_inputs(*CASES[f"age_{h}h"])["fields"][0, -1].item() for h in AGE_HOURS]
    assert len(set(ages)) == len(AGE_HOURS)  # one news, a different age bucket at each time
    assert (scorer.model_inputs(*CASES["no_time"])["fields"][:, -3:] == 1).all()  # hour, weekday, age: OOV


def test_scores_react_to_the_request(predictor):
    """The 1e-6 agreement above is meaningful: candidates, users and times move the scores."""
    scorer = CtrRequestScorer(predictor, TRAIN.news)
    base, _ = scorer.score(*CASES["known_user_long_history"])
    assert base.std() > 1e-3
    user, history, candidates, time = CASES["known_user_long_history"]
    assert np.abs(scorer.score("U_cold", history, candidates, time)[0] - base).max() > 1e-4
    assert np.abs(scorer.score(user, history, candidates, None)[0] - base).max() > 1e-4
    assert np.abs(scorer.score(user, history[:-1], candidates, time)[0] - base).max() > 1e-4


def test_missing_ids_and_known_news(predictor):
    scorer = CtrRequestScorer(predictor, TRAIN.news)
    scores, missing = scorer.score(*CASES["known_user_long_history"])
    assert len(scores) == len(CANDIDATES) and np.isfinite(scores).all()
    assert missing == [*OFF_CATALOGUE, "N_nowhere"]  # candidate order, each once
    assert all(scorer.known_news(n) for n in KNOWN_NEWS + CATALOGUE_UNSEEN)
    assert not any(scorer.known_news(n) for n in OFF_CATALOGUE + ["N_nowhere"])
    empty, none_missing = scorer.score(KNOWN_USER, [], [], VALID_TIME)
    assert empty.dtype == np.float32 and empty.shape == (0,) and none_missing == []


def test_concurrent_calls_agree_with_sequential_ones(predictor):
    scorer = CtrRequestScorer(predictor, TRAIN.news)
    requests = list(CASES.values()) * 8
    sequential = [scorer.score(*r)[0] for r in requests]
    threads = torch.get_num_threads()
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda r: scorer.score(*r)[0], requests))
    for a, b in zip(sequential, concurrent):
        np.testing.assert_array_equal(a, b)
    assert torch.get_num_threads() == threads


def test_scorer_keeps_the_stored_tables_when_the_predictor_swaps_them():
    predictor = _random_predictor("dcn", "news+user")
    scorer = CtrRequestScorer(predictor, TRAIN.news)
    before, _ = scorer.score(*CASES["known_user_long_history"])
    users = TRAIN.user_embeddings
    other = EmbeddingTable(users.ids, users.vectors + 3.0)
    imps, hist = _tables(*CASES["known_user_long_history"])
    swapped = predictor.score(imps, hist, TRAIN.news, user_embeddings=other)  # installs `other` in predictor.model
    assert np.abs(swapped - before).max() > 1e-4
    np.testing.assert_array_equal(scorer.score(*CASES["known_user_long_history"])[0], before)


def test_bad_input_names_the_field():
    predictor = _random_predictor("pnn", "news")
    scorer = CtrRequestScorer(predictor, TRAIN.news)
    with pytest.raises(TypeError, match="time"):
        scorer.score(KNOWN_USER, [], KNOWN_NEWS, "2019-11-14T08:55:22Z")
    with pytest.raises(TypeError, match="history"):
        scorer.score(KNOWN_USER, "N1 N2", KNOWN_NEWS, VALID_TIME)
    with pytest.raises(ValueError, match="predictor"):
        CtrRequestScorer.from_pyfunc(CtrPyfunc())
    with pytest.raises(ValueError, match="category"):
        CtrRequestScorer(predictor, TRAIN.news.drop(columns="category"))

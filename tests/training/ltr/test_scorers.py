"""The model scores of ``ltr_features``: the student's two heads on the requested threads, and the CTR
model's probability of each logged pair, NaN for users it does not know."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from training.ctr.vocabulary import Vocabulary
from training.data.prepared import BehaviorLog
from training.ltr.scorers import ctr_scorer, student_scorer


class Student:
    """Scores from the ids' numbers; remembers torch's thread count during each call."""

    def __init__(self):
        self.threads = []

    def score(self, pairs):
        self.threads.append(torch.get_num_threads())
        t = pairs["trigger_id"].str[1:].astype(float).to_numpy()
        c = pairs["candidate_id"].str[1:].astype(float).to_numpy()
        return pd.DataFrame({"click_logit": t - c, "quality": (t + c) % 5, "score": 0.0})


def test_student_scorer_gives_both_heads_as_float32_on_the_requested_threads():
    student = Student()
    before = torch.get_num_threads()
    click, quality = student_scorer(student, threads=before + 1)(np.array(["T3", "T4"], dtype=object),
                                                                 np.array(["N1", "N9"], dtype=object))
    assert click.dtype == quality.dtype == np.float32
    np.testing.assert_array_equal(click, [2.0, -5.0])
    np.testing.assert_array_equal(quality, [4.0, 3.0])
    assert student.threads == [before + 1] and torch.get_num_threads() == before


BEHAVIORS = BehaviorLog(
    impressions=pd.DataFrame({"impression_id": [1, 1, 2, 2, 3], "position": [0, 1, 0, 1, 0],
                              "news_id": ["N1", "N2", "N3", "N4", "N5"], "user_id": ["u1", "u1", "u2", "u2", "u1"]}),
    histories=pd.DataFrame({"impression_id": [1, 2, 3], "user_id": ["u1", "u2", "u1"], "history": ["", "", ""]}))


class CtrModel:
    """Scores 0.1 x the news number; knows user u1 only; remembers the tables it was given."""

    def __init__(self):
        self.predictor = SimpleNamespace(features=SimpleNamespace(vocabularies={"user_id": Vocabulary(["u1"])}))
        self.calls = []

    def score_tables(self, impressions, histories):
        self.calls.append((impressions.copy(), histories.copy()))
        return impressions["news_id"].str[1:].astype(float).to_numpy() / 10


def test_ctr_scorer_scores_logged_pairs_in_their_order_and_masks_unknown_users():
    model = CtrModel()
    pairs = pd.DataFrame({"impression_id": [2, 1, 2], "position": [1, 0, 0], "trigger_id": "T0"})
    scores = ctr_scorer(model, BEHAVIORS)(pairs)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, [np.nan, 0.1, np.nan], rtol=1e-6)   # impression 2 is u2's: unknown
    impressions, histories = model.calls[0]
    assert impressions["news_id"].tolist() == ["N4", "N1", "N3"]
    assert sorted(histories["impression_id"]) == [1, 2]                      # only the pairs' impressions


def test_ctr_scorer_refuses_a_pair_without_an_impression_row():
    pairs = pd.DataFrame({"impression_id": [1, 3], "position": [0, 4]})
    with pytest.raises(ValueError, match="no impression row in mind_behaviors"):
        ctr_scorer(CtrModel(), BEHAVIORS)(pairs)

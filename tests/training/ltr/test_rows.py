"""Feature rows in batches: any batch size gives the rows of one batch, and each batch stays that small."""
import numpy as np
import pandas as pd
import pytest
from builders.ltr import START_DAY, logged_inputs

from training.ltr.count_features import LogCounts, PathRanks
from training.ltr.rows import logged_rows, related_rows

INPUTS = logged_inputs(seed=3)
DAY = (START_DAY + pd.Timedelta(days=3)).strftime("%Y-%m-%d")


class Student:
    """A deterministic stand-in for the ranking student that remembers the size of each call."""

    def __init__(self):
        self.calls = []
        self.index = pd.Index(INPUTS.news_vectors.ids)

    def __call__(self, triggers, candidates):
        self.calls.append(len(triggers))
        t, c = self.index.get_indexer(triggers), self.index.get_indexer(candidates)
        return (np.sin(t + 0.5 * c).astype(np.float32), ((t * 7 + c) % 5).astype(np.float32))


def ctr(pairs):
    return (pairs["impression_id"].to_numpy() % 7 / 7 + pairs["position"].to_numpy() / 100).astype(np.float32)


@pytest.fixture(scope="module")
def counts():
    return LogCounts.from_logs(INPUTS.impressions, INPUTS.pairs)


def _logged(counts, pairs, batch_size, path_ranks=INPUTS.path_ranks, student=None):
    return logged_rows(pairs, INPUTS.times, counts, INPUTS.news_vectors, path_ranks, student or Student(), ctr,
                       ctr_mask_fraction=0.5, seed=1, batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [1, 4, 7])
def test_batched_logged_rows_equal_one_batch(counts, batch_size):
    pairs = INPUTS.part(DAY).assign(quality=np.float32(2.0))
    whole = _logged(counts, pairs, batch_size=0)
    student = Student()
    batched = _logged(counts, pairs, batch_size, path_ranks=PathRanks(INPUTS.path_ranks), student=student)
    pd.testing.assert_frame_equal(batched, whole)
    assert list(whole.columns[:len(pairs.columns)]) == list(pairs.columns)
    features = whole.columns[len(pairs.columns):]
    assert (whole[features].dtypes == np.float32).all()
    assert whole["ctr_score"].isna().any() and whole["ctr_score"].notna().any()  # the seeded mask, per impression
    assert whole["in_coclick"].any() and whole["embedding_cosine"].isna().any()  # news 0 has no vector
    per_impression = pairs.groupby("impression_id").size().to_numpy()
    assert len(student.calls) == -(-per_impression.size // batch_size)
    assert max(student.calls) <= np.sort(per_impression)[-batch_size:].sum()


def test_interleaved_impressions_keep_their_row_order(counts):
    pairs = INPUTS.part(DAY)
    shuffled = pairs.sample(frac=1.0, random_state=0).reset_index(drop=True)
    whole = _logged(counts, shuffled, batch_size=0)
    pd.testing.assert_frame_equal(_logged(counts, shuffled, batch_size=3), whole)
    pd.testing.assert_frame_equal(whole[pairs.columns], shuffled)


def test_batched_related_rows_equal_one_batch(counts):
    union = INPUTS.path_ranks[INPUTS.path_ranks["path"] == "union"]
    whole = related_rows(union, counts, DAY, INPUTS.news_vectors, INPUTS.path_ranks, Student(), batch_size=0)
    student = Student()
    batched = related_rows(union, counts, DAY, INPUTS.news_vectors, INPUTS.path_ranks, student, batch_size=5)
    pd.testing.assert_frame_equal(batched, whole)
    assert whole["ctr_score"].isna().all() and len(student.calls) == -(-union["trigger_id"].nunique() // 5)
    served = counts.snapshot(DAY).features(union["trigger_id"], union["news_id"], pd.Timestamp(DAY, tz="UTC"))
    np.testing.assert_array_equal(whole[counts.feature_names()].to_numpy(), served)  # what serving looks up

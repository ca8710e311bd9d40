"""The interest path's ranking features: whether and where each candidate is in its user's union of the day."""
import numpy as np
import pandas as pd
import pytest

from training.query_lists.interest_feature import INTEREST_FEATURES, interest_path_features

ROWS = pd.DataFrame({"impression_id": [1, 1, 1, 2, 2, 3],
                     "day": ["2019-11-13", "2019-11-13", "2019-11-13", "2019-11-14", "2019-11-14", "2019-11-14"],
                     "candidate_id": ["N1", "N2", "N3", "N1", "N4", "N2"],
                     "clicked": [1, 0, 0, 0, 1, 1]})
USERS = {1: "U1", 2: "U1", 3: "U2"}


def test_ranks_are_1_based_in_the_users_union_of_the_impressions_day():
    unions = {("U1", "2019-11-13"): ["N3", "N9", "N1"], ("U1", "2019-11-14"): ["N4"]}   # U2: no list
    out = interest_path_features(ROWS, USERS, unions)
    assert INTEREST_FEATURES == ("in_interest", "rank_interest")
    assert out["in_interest"].tolist() == [1, 0, 1, 0, 1, 0]
    np.testing.assert_array_equal(out["rank_interest"], [3, np.nan, 1, np.nan, 1, np.nan])
    assert out[list(ROWS.columns)].equals(ROWS)                     # the rows' columns are kept as they were
    assert out["rank_interest"].dtype == np.float32


def test_an_impression_without_a_user_is_named():
    with pytest.raises(ValueError, match=r"1 impression\(s\) have no user \(first: \['3'\]\)"):
        interest_path_features(ROWS, {1: "U1", 2: "U1"}, {})
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['candidate_id'\]"):
        interest_path_features(ROWS.drop(columns="candidate_id"), USERS, {})

"""Click-derived training targets, the retrieval filter and the query-label TSV reader."""
from __future__ import annotations

import pandas as pd
import pytest

from training.slm.query_targets import (
    QueryLabelError,
    click_refined_targets,
    followup_hits,
    key_phrase,
    read_query_labels,
    user_targets,
)


@pytest.fixture
def news() -> pd.DataFrame:
    rows = [
        ("T1", "finance", "Fed raises interest rates again", "The bank moved."),
        ("A", "finance", "Mortgage rates climb to highest level since 2008", ""),
        ("B", "finance", "You won't believe what happened next to stock markets!", ""),
        ("C", "finance", "Shocking: Savings accounts finally pay interest", ""),
        ("D", "sports", "Wow", ""),
        ("E", "sports", "Lakers beat Celtics in overtime", ""),
        ("T2", "sports", "NBA season opens tonight", ""),
    ]
    return pd.DataFrame(rows, columns=["news_id", "category", "title", "abstract"])


def test_key_phrase_drops_stopwords_clickbait_and_punctuation():
    assert key_phrase("You won't believe what happened next to stock markets!") == "stock markets"
    assert key_phrase("Shocking: Savings accounts finally pay interest") == "savings accounts finally pay interest"
    assert key_phrase("The Fed's plan: rates, jobs and the economy in 2020", max_words=3) == "fed plan rates"
    assert key_phrase("!!!") == ""


def test_click_refined_targets_most_clicked_first(news):
    clicks = pd.DataFrame({"trigger_id": ["T1", "T1", "T1", "T1", "T1", "T1", "T2", "T1"],
                           "candidate_id": ["B", "A", "A", "C", "D", "ZZ", "D", "T1"]})
    result = click_refined_targets(clicks, news)
    t1 = result.targets[result.targets.input_id == "T1"]
    assert t1["query"].tolist() == ["mortgage rates climb highest level", "stock markets",
                                    "savings accounts finally pay interest"]
    assert t1["source_news_id"].tolist() == ["A", "B", "C"]
    # "Wow" leaves no phrase -> T2 has no target; ZZ is not in the catalogue; T1 -> T1 is ignored
    assert result.n_inputs == 2 and result.n_inputs_without_target == 1
    assert result.n_unknown_news == 1 and result.n_dropped_filter == 2   # "Wow" under T1 and T2
    examples = result.to_examples()
    assert examples["input_id"].tolist() == ["T1"]
    assert "Title: Fed raises interest rates again" in examples.loc[0, "message"]
    assert examples.loc[0, "target"].splitlines()[0] == "mortgage rates climb highest level"


def test_click_refined_targets_max_queries(news):
    clicks = pd.DataFrame({"trigger_id": ["T1"] * 3, "candidate_id": ["A", "B", "C"]})
    assert len(click_refined_targets(clicks, news, max_queries=2).targets) == 2


def test_enhanced_filter_keeps_queries_whose_retrieval_holds_a_clicked_followup(news):
    clicks = pd.DataFrame({"trigger_id": ["T1", "T1", "T2"], "candidate_id": ["A", "B", "E"]})
    seen = []

    def fake_retrieve(input_ids, queries):
        seen.extend(zip(input_ids, queries))
        # mortgage (from A) finds B, another follow-up of T1: kept; stock markets (from B) finds nothing
        # clicked after T1; lakers (from E) finds A, clicked after T1 but not after T2: dropped
        return [["X", "B"] if "mortgage" in q else ["A"] if "lakers" in q else ["X", "Y"] for q in queries]

    result = click_refined_targets(clicks, news, retrieve=fake_retrieve)
    assert sorted(seen) == [("T1", "mortgage rates climb highest level"), ("T1", "stock markets"),
                            ("T2", "lakers beat celtics overtime")]
    assert result.targets["source_news_id"].tolist() == ["A"]
    assert result.n_dropped_retrieval == 2 and result.n_inputs_without_target == 1
    everything = click_refined_targets(clicks, news)
    flags = followup_hits(everything.targets, clicks, fake_retrieve)
    assert flags.tolist() == [q.startswith("mortgage") for q in everything.targets["query"]]


def test_news_targets_prompt_with_the_abstract(news):
    clicks = pd.DataFrame({"trigger_id": ["T1"], "candidate_id": ["A"]})
    message = click_refined_targets(clicks, news).inputs["message"].iloc[0]
    assert "Abstract: The bank moved." in message and "Title: Fed raises interest rates again" in message


def test_user_targets_by_impression_and_user(news):
    histories = pd.DataFrame({"impression_id": [1, 2], "user_id": ["U1", "U1"],
                              "time": pd.to_datetime(["2019-11-09", "2019-11-10"]),
                              "history": [["T1"], ["T1", "E"]]})
    clicks = pd.DataFrame({"impression_id": [1, 1, 2, 2], "news_id": ["A", "D", "B", "C"],
                           "label": [1, 1, 1, 0]})
    by_impression = user_targets(histories, clicks, news)
    assert by_impression.targets.groupby("input_id")["query"].agg(list).to_dict() == {
        "1": ["mortgage rates climb highest level"], "2": ["stock markets"]}
    by_user = user_targets(histories, clicks, news, by="user")
    examples = by_user.to_examples()
    assert examples["input_id"].tolist() == ["U1"]
    assert examples.loc[0, "queries"] == ["mortgage rates climb highest level", "stock markets"]
    assert "2. Lakers beat Celtics in overtime" in examples.loc[0, "message"]


def test_read_query_labels_ok(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("# from editors\ninput_id\tquery\n\nN1\tmortgage rates\nN1\t  stock   market \n")
    frame = read_query_labels(path)
    assert frame.values.tolist() == [["N1", "mortgage rates"], ["N1", "stock market"]]


@pytest.mark.parametrize("body, line, field", [
    ("input_id\tquery\nN1\tok query\nN2\n", 3, "query"),
    ("input_id\tquery\nN1\t \n", 2, "query"),
    ("input_id\tquery\n\t a query\n", 2, "input_id"),
    ("input_id\tquery\nN1\ta\tb\n", 2, "row"),
    ("# c\nid\tq\n", 2, "header"),
])
def test_read_query_labels_errors_name_file_line_and_field(tmp_path, body, line, field):
    path = tmp_path / "bad.tsv"
    path.write_text(body)
    with pytest.raises(QueryLabelError) as error:
        read_query_labels(path)
    assert f"{path}:{line}: field '{field}'" in str(error.value)

"""Prompts, target format and the parse / post-filter rules of the query generators."""
from __future__ import annotations

import pytest
from builders.slm import tiny_tokenizer

from training.slm.prompts import (
    FEW_SHOT_EXAMPLES,
    MAX_ABSTRACT_CHARS,
    PROMPT_WITH_ABSTRACT,
    chat_prompt,
    filter_queries,
    format_target,
    is_english,
    news_prompt,
    news_row_prompt,
    parse_queries,
    user_prompt,
)


def test_news_prompt_skips_missing_parts_and_needs_a_title():
    text = news_prompt("  Fed raises   rates ", category="finance")
    assert "Title: Fed raises rates" in text and "Category: finance" in text and "Abstract" not in text
    with pytest.raises(ValueError, match="title"):
        news_prompt("  ")


def test_news_row_prompt_shows_the_abstract_by_default():
    row = {"title": "Fed raises rates", "abstract": "The bank moved " * 40, "category": "finance"}
    text = news_row_prompt(row)
    assert PROMPT_WITH_ABSTRACT and "Abstract: The bank moved" in text and text.endswith("...\nSearch queries:")
    assert len(text.split("Abstract: ")[1]) <= MAX_ABSTRACT_CHARS + len("...\nSearch queries:")
    assert "Abstract" not in news_row_prompt(row, with_abstract=False)
    assert "Abstract" not in news_row_prompt({"title": "T", "abstract": float("nan"), "category": None})
    # the few-shot example is written like the real prompts: title, category and abstract
    assert all("Abstract: " in message for message, _ in FEW_SHOT_EXAMPLES["news"])


def test_user_prompt_keeps_the_most_recent_titles_last():
    text = user_prompt(["old one", "a", "b", "c", "d", "newest"], max_items=3)
    assert "old one" not in text and text.index("c") < text.index("newest")
    assert "3. newest" in text
    with pytest.raises(ValueError):
        user_prompt(["", " "])


def test_format_target_caps_queries():
    assert format_target([f"query {i}" for i in range(9)]).count("\n") == 5
    assert format_target(["a b", " ", "c  d"]) == "a b\nc d"


def test_chat_prompt_uses_template_and_few_shot_turns():
    tokenizer = tiny_tokenizer()
    plain = chat_prompt(tokenizer, "MESSAGE", task="user")
    assert plain.startswith("<|im_start|>system\n") and plain.endswith("MESSAGE<|im_end|>\n<|im_start|>assistant\n")
    shot = chat_prompt(tokenizer, "MESSAGE", few_shot=True, task="news")
    assert shot.count("<|im_start|>assistant") == 2 and "mortgage rates forecast" in shot  # one worked example
    with pytest.raises(ValueError, match="task"):
        chat_prompt(tokenizer, "x", task="nope")


def test_parse_strips_markers_quotes_and_case():
    parsed = parse_queries('Here are some queries:\n1. Mortgage Rates Today\n- "NBA  scores tonight"\n* stock market?\n'
                           "2) weather forecast\n")
    assert parsed.queries == ["mortgage rates today", "nba scores tonight", "stock market", "weather forecast"]
    assert not parsed.malformed and parsed.n_raw == 4


def test_parse_removes_duplicates_and_near_duplicates():
    parsed = parse_queries("nba scores today\nNBA scores today\ntoday nba scores\nlakers trade rumors")
    assert parsed.queries == ["nba scores today", "lakers trade rumors"]
    assert parsed.n_duplicates == 2


def test_filters_length_and_language():
    kept, n_filtered, n_duplicates = filter_queries(
        ["snow", "winter storm warning", "一 二 三 四 五", "погода в москве завтра",
         "one two three four five six seven eight nine", "x" * 40 + " " + "y" * 45])
    assert kept == ["winter storm warning"] and n_filtered == 5 and n_duplicates == 0
    assert is_english("covid-19 vaccine don't") and not is_english("")


def test_parse_flags_malformed_answers_and_caps():
    assert parse_queries("").malformed
    assert parse_queries(None).malformed
    garbage = parse_queries("!!!\n???\nok")
    assert garbage.malformed and garbage.queries == []
    many = parse_queries("\n".join(f"topic number {i}" for i in range(10)), max_queries=6)
    assert len(many.queries) == 6 and not many.malformed

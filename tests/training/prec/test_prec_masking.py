"""MNTP token masking statistics (15 %, 80/10/10, view-specific [MASK_i]) and PUNR behaviour masking (alpha, beta,
spans)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from training.prec.config import NewsPretrainConfig
from training.prec.masking import IGNORE_INDEX, mask_tokens, span_mask
from training.prec.news_pretrainer import prepare_news_pretraining


def test_mask_tokens_rates_and_view_specific_ids():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (400, 120), generator=gen)
    view_ids = torch.ones_like(ids)
    view_ids[:, 60:] = 2
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False
    mask_by_view = torch.tensor([5, 6, 7])
    random_ids = torch.arange(2000, 3000)  # disjoint from the inputs, so random replacements are visible
    corrupted, labels = mask_tokens(ids, maskable, mask_by_view[view_ids], random_ids, 0.15, 0.8, 0.1, gen)

    selected = labels != IGNORE_INDEX
    n_selected = int(selected.sum())
    assert abs(n_selected / int(maskable.sum()) - 0.15) < 0.01
    assert not selected[:, 0].any()
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(corrupted[~selected], ids[~selected])
    is_mask = (corrupted == 6) | (corrupted == 7)
    is_random = corrupted >= 2000
    unchanged = selected & (corrupted == ids)
    assert abs(int((selected & is_mask).sum()) / n_selected - 0.8) < 0.02
    assert abs(int((selected & is_random).sum()) / n_selected - 0.1) < 0.02
    assert abs(int(unchanged.sum()) / n_selected - 0.1) < 0.02
    # the mask token is the one of the token's own view
    assert bool((view_ids[corrupted == 6] == 1).all()) and bool((view_ids[corrupted == 7] == 2).all())
    assert int((corrupted == 6).sum()) > 0 and int((corrupted == 7).sum()) > 0


def _news(n: int) -> pd.DataFrame:
    words = {"sports": "goal match team coach league", "finance": "stock market bank rate profit"}
    rows = []
    for i in range(n):
        cat = "sports" if i % 2 else "finance"
        w = words[cat].split()
        rows.append({"news_id": f"N{i}", "category": cat, "subcategory": cat + "x",
                     "title": " ".join(w[(i + k) % 5] for k in range(4)) + f" t{i}",
                     "abstract": " ".join(w[(i * 3 + k) % 5] for k in range(6)) + f" a{i}",
                     "url": "", "title_entities": "[]", "abstract_entities": "[]"})
    return pd.DataFrame(rows)


def test_collated_news_batches_use_the_view_specific_mask_token():
    config = NewsPretrainConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_len=24,
                                mask_prob=0.3, vocab_size=200, min_frequency=1, progress_bar=False)
    setup = prepare_news_pretraining(_news(40), config)
    tok = setup.tokenizer
    assert len(set(tok.view_mask_ids)) == 2
    counts = {0: 0, 1: 0}
    for _ in range(10):
        batch = setup.train_collator(list(range(40)))
        masked, views = batch["masked_ids"], batch["view_ids"]
        for v, mask_id in enumerate(tok.view_mask_ids):
            at = masked == mask_id
            counts[v] += int(at.sum())
            assert bool((views[at] == v + 1).all())
        # [CLS], [SEP] and padding are never selected
        specials = (batch["input_ids"] == tok.cls_id) | (batch["input_ids"] == tok.sep_id) | \
            (batch["attention_mask"] == 0)
        assert bool((batch["mntp_labels"][specials] == IGNORE_INDEX).all())
    assert counts[0] > 0 and counts[1] > 0


def _history(length: int, rng: np.random.Generator, width: int = 50, unknown: float = 0.1) -> np.ndarray:
    """A padded row's maskable flags: ``length`` behaviours (a share ``unknown`` of them [UNK]), then padding."""
    maskable = np.zeros(width, dtype=bool)
    maskable[:length] = rng.random(length) >= unknown
    return maskable


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return [(int(a), int(b - a)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def test_span_mask_realises_alpha_and_beta_over_random_histories():
    rng = np.random.default_rng(0)
    n_maskable = n_selected = n_span = 0
    for _ in range(4000):
        maskable = _history(int(rng.integers(1, 51)), rng)
        selected, from_span = span_mask(maskable, 0.3, 0.3, 3, rng)
        assert not (selected & ~maskable).any() and not (from_span & ~selected).any()
        n_maskable += int(maskable.sum())
        n_selected += int(selected.sum())
        n_span += int(from_span.sum())
    assert abs(n_selected / n_maskable - 0.3) < 0.005
    assert abs(n_span / n_selected - 0.3) < 0.01


@pytest.mark.parametrize(("n", "alpha", "beta", "span_length", "expected"),
                         [(100, 0.3, 0.3, 3, (30, 9)), (20, 0.4, 0.25, 2, (8, 2)), (10, 0.5, 1.0, 5, (5, 5)),
                          (10, 1.0, 0.0, 3, (10, 0))])
def test_span_mask_counts_are_exact_where_the_arithmetic_allows(n, alpha, beta, span_length, expected):
    rng = np.random.default_rng(1)
    for _ in range(50):
        selected, from_span = span_mask(np.ones(n, dtype=bool), alpha, beta, span_length, rng)
        assert (int(selected.sum()), int(from_span.sum())) == expected
        # spans never overlap, so each run of span positions is a whole number of spans
        assert all(length % span_length == 0 for _, length in _runs(from_span))


def test_spans_are_contiguous_known_behaviours_and_padding_is_never_masked():
    rng = np.random.default_rng(2)
    for _ in range(300):
        maskable = _history(int(rng.integers(30, 51)), rng, unknown=0.05)
        selected, from_span = span_mask(maskable, 0.3, 0.6, 4, rng)
        runs = _runs(from_span)
        for start, length in runs:
            assert maskable[start: start + length].all()  # inside the history, no padding or [UNK]
        # whole spans of 4 but the last (touching spans merge into one run), never fragments
        assert len(runs) <= -(-int(from_span.sum()) // 4)
        assert not selected[~maskable].any()
    # no free run of 3 behaviours: every span shrinks to what fits
    alternating = np.arange(40) % 2 == 0
    selected, from_span = span_mask(alternating, 0.5, 1.0, 3, rng)
    assert int(from_span.sum()) == 10 and all(length == 1 for _, length in _runs(from_span))


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_short_histories_are_masked_at_alpha_in_expectation(n):
    rng = np.random.default_rng(3)
    maskable = np.zeros(5, dtype=bool)
    maskable[:n] = True
    counts, span_counts = [], []
    for _ in range(4000):
        selected, from_span = span_mask(maskable, 0.3, 0.3, 3, rng)
        assert not selected[n:].any() and not (from_span & ~selected).any()
        counts.append(int(selected.sum()))
        span_counts.append(int(from_span.sum()))
    assert set(counts) <= {int(np.floor(0.3 * n)), int(np.ceil(0.3 * n))}
    assert abs(np.mean(counts) - 0.3 * n) < 0.03
    assert abs(np.mean(span_counts) - 0.09 * n) < 0.02


def test_span_mask_wants_one_history():
    with pytest.raises(ValueError, match="maskable must be one history"):
        span_mask(np.ones((2, 5), dtype=bool), 0.3, 0.3, 3, np.random.default_rng(0))

"""MNTP token masking statistics (15 %, 80/10/10, view-specific [MASK_i]) and PUNR span masking."""
from __future__ import annotations

import numpy as np
import pandas as pd
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


def test_span_mask_total_ratio_and_span_lengths():
    rng = np.random.default_rng(0)
    run_lengths = []
    for length in [10, 20, 40, 50]:
        for _ in range(50):
            selected = span_mask(length, total_ratio=0.3, span_ratio=0.1, rng=rng)
            assert int(selected.sum()) == round(0.3 * length)
            runs, current = [], 0
            for flag in list(selected) + [False]:
                if flag:
                    current += 1
                elif current:
                    runs.append(current)
                    current = 0
            run_lengths.extend(r / max(1, round(0.1 * length)) for r in runs)
    # runs are whole spans of round(beta * L) items (adjacent spans merge, the last one may be cut short)
    assert np.mean(run_lengths) >= 0.9
    assert span_mask(0, 0.3, 0.1, rng).shape == (0,)
    assert int(span_mask(3, 0.1, 0.1, rng).sum()) == 1  # at least one item when alpha > 0

"""News pre-training tasks: NVA swaps and balance, task switch-off, every task's loss falls on tiny data."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from training.prec.config import NewsPretrainConfig
from training.prec.news_pretrainer import prepare_news_pretraining
from training.prec.news_tasks import resolve_news_tasks

WORDS = {
    "sports": "goal match team coach league score win player",
    "finance": "stock market bank rate profit trade fund price",
    "health": "doctor virus care diet sleep study drug nurse",
}


def make_news(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        cat = list(WORDS)[i % 3]
        w = WORDS[cat].split()
        rows.append({"news_id": f"N{i}", "category": cat, "subcategory": f"{cat}{i % 2}",
                     "title": " ".join(rng.choice(w, 5)), "abstract": " ".join(rng.choice(w, 8)) + f" n{i}",
                     "url": "", "title_entities": '[{"Label": "Acme Corp"}]', "abstract_entities": "[]"})
    return pd.DataFrame(rows)


def tiny_config(**changes) -> NewsPretrainConfig:
    base = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_len=32, dropout=0.0,
                vocab_size=300, min_frequency=1, batch_size=16, progress_bar=False)
    base.update(changes)
    return NewsPretrainConfig(**base)


def test_nva_labels_balanced_and_swapped_views_come_from_another_news():
    setup = prepare_news_pretraining(make_news(60), tiny_config(nva_prob=0.5))
    collator, views = setup.train_collator, setup.train_collator.views
    pool = set(setup.train_index.tolist())
    labels = []
    for _ in range(30):
        indices = setup.train_index[:16].tolist()
        batch = collator(indices)
        labels.extend(batch["nva_label"].tolist())
        for row, i in enumerate(indices):
            donor = int(batch["nva_donor"][row])
            swapped = batch["nva_swapped"][row].tolist()
            if donor < 0:
                assert batch["nva_label"][row] == 1 and not any(swapped)
                continue
            assert batch["nva_label"][row] == 0
            assert donor != i and donor in pool
            assert 0 < sum(swapped) < len(swapped)  # never all views: that would be an aligned news again
            expected = [views[donor][v] if swapped[v] else views[i][v] for v in range(len(swapped))]
            ids, _ = setup.tokenizer.assemble(expected, setup.module.config.max_len)
            assert batch["input_ids"][row, : len(ids)].tolist() == ids
            # NCP is not asked of a mismatched news
            assert int(batch["category"][row]) == -100
    assert abs(1 - np.mean(labels) - 0.5) < 0.07


def test_tasks_switched_off_without_data(caplog):
    news = make_news(20)
    no_categories = news.assign(category="")
    with caplog.at_level(logging.WARNING, logger="training.prec.news_tasks"):
        tasks = resolve_news_tasks(tiny_config(), no_categories)
    assert tasks.names == ("mntp", "nva")
    assert "NCP switched off" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.prec.news_tasks"):
        tasks = resolve_news_tasks(tiny_config(views=("title",)), news.drop(columns=["category"]))
    assert tasks.names == ("mntp",)
    assert "NVA switched off" in caplog.text
    setup = prepare_news_pretraining(no_categories, tiny_config())
    assert setup.module.heads.ncp is None and "category" not in setup.train_collator(list(range(4)))
    with pytest.raises(ValueError, match="switched off"):
        resolve_news_tasks(tiny_config(views=("title",), weight_mntp=0.0), no_categories)


def test_each_task_loss_decreases_on_a_fixed_tiny_batch():
    setup = prepare_news_pretraining(make_news(48), tiny_config(weight_subcategory=1.0, mask_prob=0.3))
    module = setup.module
    batch = setup.val_collator(setup.train_index[:32].tolist())  # seeded by its indices: a fixed batch
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        total, outputs = module.total_loss(batch)
        losses = {name: float(loss.detach()) for name, (loss, _) in outputs.items()}
        first = first or losses
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert set(first) == {"mntp", "nva", "ncp", "subcategory"}
    for name, start in first.items():
        assert np.isfinite(losses[name])
        assert losses[name] < 0.7 * start, (name, start, losses[name])

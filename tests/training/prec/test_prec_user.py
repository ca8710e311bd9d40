"""User pre-trainer: latest histories, [UNK] clicks, UVA swaps, MUTP/UVA/generation losses, PUNR behaviour masking,
train_user_encoder + encode_users(as_of_day)."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from training.embedding_table import EmbeddingTable
from training.prec.config import UserPretrainConfig
from training.prec.masking import IGNORE_INDEX
from training.prec.user_data import ITEM_MASK, ITEM_OFFSET, ITEM_PAD, ITEM_UNK, latest_histories
from training.prec.user_pretrainer import encode_users, prepare_user_pretraining, train_user_encoder

N_NEWS, DIM = 60, 16


def news_table() -> EmbeddingTable:
    rng = np.random.default_rng(0)
    return EmbeddingTable([f"N{i}" for i in range(N_NEWS)], rng.normal(size=(N_NEWS, DIM)).astype(np.float32))


def make_histories(n_users: int, seed: int = 0) -> pd.DataFrame:
    """Two days; each user clicks within one of three news groups; day 2 extends day 1's history."""
    rng = np.random.default_rng(seed)
    rows, imp = [], 1
    for u in range(n_users):
        group = u % 3
        clicks = [f"N{group * 20 + int(k)}" for k in rng.integers(0, 20, size=14)]
        length = 4 + u % 8
        for d, day in enumerate(["2019-11-09", "2019-11-10"]):
            rows.append({"impression_id": imp, "user_id": f"U{u}", "day": day,
                         "time": pd.Timestamp(f"{day} 10:00", tz="UTC") + pd.Timedelta(minutes=u),
                         "history": clicks[: length + 2 * d]})
            imp += 1
    return pd.DataFrame(rows)


def profiles(n_users: int) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [f"U{u}" for u in range(n_users)],
                         "region": [["north", "south"][u % 2] for u in range(n_users)],
                         "device": [["mobile", "desktop", "tablet"][u % 3] for u in range(n_users)]})


def tiny_config(**changes) -> UserPretrainConfig:
    base = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, dropout=0.0, max_history=16,
                batch_size=16, num_negatives=20, progress_bar=False)
    base.update(changes)
    return UserPretrainConfig(**base)


def test_latest_histories_respects_as_of_day():
    h = make_histories(4)
    h = pd.concat([h, pd.DataFrame([{"impression_id": 99, "user_id": "U9", "day": "2019-11-10",
                                     "time": pd.Timestamp("2019-11-10 12:00", tz="UTC"), "history": ["N1"]}])])
    day1 = latest_histories(h, "2019-11-09")
    assert day1["user_id"].tolist() == ["U0", "U1", "U2", "U3"]  # U9 only appears on day 2
    assert all(day == "2019-11-09" for day in day1["day"])
    day2 = latest_histories(h, "2019-11-10")
    assert "U9" in day2["user_id"].tolist()
    u1_day1, u1_day2 = (len(latest.set_index("user_id").loc["U1", "history"]) for latest in (day1, day2))
    assert u1_day2 == u1_day1 + 2
    assert latest_histories(h, "2019-11-01").empty


def test_unknown_history_news_use_unk_and_are_counted():
    h = make_histories(12)
    h.at[0, "history"] = ["N1", "GONE1", "N2", "GONE2"]
    h.at[2, "history"] = ["GONE3"] + list(h.at[2, "history"])  # row 2: U1 on day 1
    setup = prepare_user_pretraining(h, news_table(), tiny_config(), as_of_day="2019-11-09")
    assert setup.sequences.n_unknown == 3
    u0 = setup.sequences.items[setup.sequences.user_ids.index("U0")]
    assert u0.tolist() == [1 + ITEM_OFFSET, ITEM_UNK, 2 + ITEM_OFFSET, ITEM_UNK]
    batch = setup.train_collator(list(range(len(setup.sequences))))
    assert not bool((batch["mutp_labels"] == ITEM_UNK).any())  # [UNK] clicks are never targets


def test_uva_swaps_a_half_from_another_user_and_is_balanced():
    setup = prepare_user_pretraining(make_histories(40), news_table(), tiny_config(), profiles(40))
    seq, collator = setup.sequences, setup.train_collator
    labels = []
    for _ in range(25):
        indices = setup.train_index[:16].tolist()
        batch = collator(indices)
        labels.extend(batch["uva_label"].tolist())
        for row, i in enumerate(indices):
            donor = int(batch["uva_donor"][row])
            items = batch["original_items"][row]
            items = items[items != ITEM_PAD].numpy()
            own, prof = seq.items[i], seq.profile[i]
            if donor < 0:
                assert np.array_equal(items, own) and np.array_equal(batch["profile"][row].numpy(), prof)
                continue
            assert donor != i
            d_items, d_prof = seq.items[donor], seq.profile[donor]
            h, hd = len(own) // 2, len(d_items) // 2
            options = {
                "older": np.concatenate([d_items[:hd], own[h:]]), "recent": np.concatenate([own[:h], d_items[hd:]]),
                "both": d_items, "none": own,
            }
            matches = {k for k, v in options.items() if np.array_equal(items, v)}
            profile = batch["profile"][row].numpy()
            assert np.array_equal(profile, prof) or np.array_equal(profile, d_prof)
            prof_swapped = not np.array_equal(profile, prof)
            assert matches, "every view must be the user's own or the donor's"
            # a proper, non-empty subset of {older, recent, profile} comes from the donor
            if prof_swapped:
                assert matches != {"both"}
            else:
                assert matches & {"older", "recent", "both"} and "none" not in matches
    assert abs(1 - np.mean(labels) - 0.5) < 0.08


def test_token_masking_of_histories():
    h = make_histories(30)
    token = prepare_user_pretraining(h, news_table(), tiny_config(mask_prob=0.15))
    selected = total = 0
    for _ in range(20):
        batch = token.train_collator(list(range(30)))
        labels = batch["mutp_labels"]
        real = batch["original_items"] >= ITEM_OFFSET
        selected += int((labels >= 0).sum())
        total += int(real.sum())
        assert bool((labels[labels >= 0] == batch["original_items"][labels >= 0]).all())
    assert abs(selected / total - 0.15) < 0.03


def test_token_masking_batches_are_unchanged():
    """masking="token" batches (UVA swaps, 80/10/10 corruption, labels) are bit for bit those of the code before
    PUNR's alpha / beta masking: the digest was recorded from that code."""
    setup = prepare_user_pretraining(make_histories(30), news_table(), tiny_config(), profiles(30))
    digest = hashlib.sha256()
    for _ in range(3):
        batch = setup.train_collator(list(range(30)))
        for key in ("items", "mutp_labels", "original_items"):
            digest.update(batch[key].numpy().tobytes())
    assert digest.hexdigest()[:16] == "fcffd37f98ad6c8e"


def test_span_masking_of_histories_follows_alpha_beta_and_80_10_10():
    h = make_histories(30)
    h.at[7, "history"] = ["GONE"] + list(h.at[7, "history"])  # (latest rows are odd) an [UNK] click
    h.at[1, "history"] = ["N1"]  # 1-3 clicks: short histories
    h.at[3, "history"] = ["N2", "N3"]
    h.at[5, "history"] = ["N4", "N5", "N6"]
    setup = prepare_user_pretraining(h, news_table(), tiny_config(masking="span", span_mask_ratio=0.4,
                                                                  weight_uva=0.0))
    assert setup.sequences.n_unknown == 1 and min(len(items) for items in setup.sequences.items) == 1
    n_known = n_masked = n_mask_token = n_random = 0
    for _ in range(40):
        batch = setup.train_collator(list(range(len(setup.sequences))))
        original, items, labels = batch["original_items"], batch["items"], batch["mutp_labels"]
        masked = labels != IGNORE_INDEX
        assert torch.equal(labels[masked], original[masked])
        assert not bool(masked[original < ITEM_OFFSET].any())  # padding and [UNK] clicks
        assert torch.equal(items[~masked], original[~masked])
        n_known += int((original >= ITEM_OFFSET).sum())
        n_masked += int(masked.sum())
        n_mask_token += int((items[masked] == ITEM_MASK).sum())
        n_random += int((masked & (items != ITEM_MASK) & (items != original)).sum())
    assert abs(n_masked / n_known - 0.4) < 0.02
    # spans (beta = 0.3 of the masked) are all [MASK]; the single positions take 80/10/10
    assert abs(n_mask_token / n_masked - (0.3 + 0.7 * 0.8)) < 0.03
    assert abs(n_random / n_masked - 0.7 * 0.1) < 0.02


@pytest.mark.parametrize("masking", ["token", "span"])
def test_mutp_uva_and_generation_losses_decrease(masking):
    config = tiny_config(masking=masking, weight_generation=1.0, mask_prob=0.3, hidden_size=16,
                         intermediate_size=32, max_history=12)
    setup = prepare_user_pretraining(make_histories(24), news_table(), config, profiles(24))
    module = setup.module
    batch = setup.val_collator(setup.train_index[:12].tolist())  # fixed batch
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-3)
    history = []
    for _ in range(25):
        torch.manual_seed(0)  # same sampled negatives every step
        total, outputs = module.total_loss(batch)
        history.append({name: float(loss.detach()) for name, (loss, _) in outputs.items()})
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert set(history[0]) == {"mutp", "uva", "generation"}
    for name in history[0]:
        assert all(np.isfinite(step[name]) for step in history)
        assert history[-1][name] < 0.7 * history[0][name], (name, history[0][name], history[-1][name])


def test_train_user_encoder_and_encode_users_as_of_day(tmp_path):
    h = make_histories(40)
    news = news_table()
    result = train_user_encoder(h, news, tiny_config(max_epochs=2), tmp_path / "user", user_profiles=profiles(40))
    assert result.tasks == ("mutp", "uva") and (result.n_train, result.n_val) == (32, 8)
    assert np.isfinite(result.metrics["val/loss"]) and len(result.model_version) == 16
    assert (tmp_path / "user" / "manifest.json").exists() and (tmp_path / "user" / "profile_vocab.json").exists()

    late = pd.DataFrame([{"impression_id": 500, "user_id": "U_late", "day": "2019-11-10",
                          "time": pd.Timestamp("2019-11-10 23:00", tz="UTC"), "history": ["N3", "N4"]}])
    h2 = pd.concat([h, late], ignore_index=True)
    day1 = encode_users(tmp_path / "user", h2, news, "2019-11-09", user_profiles=profiles(40))
    day2 = encode_users(tmp_path / "user", h2, news, "2019-11-10", user_profiles=profiles(40))
    assert day1.vectors.shape == (40, 32) and day1.ids == sorted(day1.ids)
    assert "U_late" not in day1.ids and "U_late" in day2.ids
    # day 2 histories are longer -> vectors change; encoding only day-1 rows gives the day-1 vectors
    assert not np.allclose(day1.lookup(["U1"])[0], day2.lookup(["U1"])[0])
    only_day1 = encode_users(tmp_path / "user", h[h["day"] == "2019-11-09"], news, "2019-11-10",
                             user_profiles=profiles(40))
    np.testing.assert_allclose(only_day1.vectors, day1.vectors, atol=1e-5)
    with pytest.raises(ValueError, match="dim"):
        encode_users(tmp_path / "user", h, EmbeddingTable(["N0"], np.zeros((1, 3), np.float32)), "2019-11-10")


def test_train_user_encoder_with_punr_masking_and_generation(tmp_path):
    config = tiny_config(masking="span", weight_generation=1.0, max_epochs=1, max_steps=3, batch_size=8)
    result = train_user_encoder(make_histories(24), news_table(), config, tmp_path / "user")
    assert result.tasks == ("mutp", "uva", "generation")
    assert np.isfinite(result.metrics["val/loss"])
    assert UserPretrainConfig.load(tmp_path / "user" / "config.json") == config

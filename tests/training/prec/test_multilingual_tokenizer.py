"""Norwegian text through the PREC news tokenizer: the scratch default, and a local tokenizer (tokenizer_dir)."""
import numpy as np
import pandas as pd
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from training.prec import NewsPretrainConfig
from training.prec.news_encoder_store import load_news_encoder
from training.prec.news_pretrainer import build_tokenizer, train_news_encoder
from training.prec.tokenization import NewsTokenizer

WORDS = ["Trøndelag", "blåbær", "«Rosenborg»", "ærlig", "– sier", "skøyte", "fjøs", "været", "Ørland", "“sitat”",
         "kongeørn", "på", "får", "nå", "søndag", "sjø", "gjør", "Tromsø"]
NORWEGIAN_EXTRA = ["Øystein spiste rømmegrøt 😀 på Ærøy", "Hei🎉 – «Det går bra», sa Åse — 50 % rabatt…"]


def norwegian_news(n=60, seed=0):
    rng = np.random.default_rng(seed)
    titles = [" ".join(rng.choice(WORDS, size=6)) for _ in range(n)]
    return pd.DataFrame({"news_id": [f"N{i}" for i in range(n)],
                         "category": [["nyheter", "sport"][i % 2] for i in range(n)],
                         "subcategory": "x", "title": titles, "abstract": titles[::-1], "url": "",
                         "title_entities": "[]", "abstract_entities": "[]"})


def test_scratch_default_keeps_norwegian_words():
    corpus = [*norwegian_news()["title"], " ".join("abcdefghijklmnopqrstuvwxyz0123456789,.")]  # ASCII seen
    tok = NewsTokenizer.train(corpus, n_views=2, vocab_size=500, min_frequency=2)
    assert tok.unknown_rate(["Ørland og Tromsø får blåbær på søndag"]) == 0.0
    # unseen letters (Æ, Å) and typography (« » – — … %) are in the alphabet; only the two emoji are [UNK]
    tokens = [t for e in tok.tokenizer.encode_batch(NORWEGIAN_EXTRA, add_special_tokens=False) for t in e.tokens]
    assert tokens.count("[UNK]") == 2
    tokens = tok.tokenizer.encode("Hei🎉 rømmegrøt", add_special_tokens=False).tokens
    assert "[UNK]" in tokens and tokens[0] != "[UNK]" and tokens.count("[UNK]") == 1
    nfd = "Bla\u030abær"  # å typed as a + combining ring
    nfc_ids = tok.tokenizer.encode("Blåbær", add_special_tokens=False).ids
    assert tok.tokenizer.encode(nfd, add_special_tokens=False).ids == nfc_ids


def _local_tokenizer(path):
    """A multilingual-style (XLM-R-like special tokens) BPE tokenizer saved offline by the test itself."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(norwegian_news()["title"].tolist() + ["English words too"], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False))
    path.mkdir()
    tok.save(str(path / "tokenizer.json"))
    return path


def test_local_tokenizer_option_trains_and_reloads(tmp_path):
    local = _local_tokenizer(tmp_path / "xlmr-like")
    config = NewsPretrainConfig(tokenizer_dir=str(local), hidden_size=32, num_layers=1, num_heads=2,
                                intermediate_size=64, max_len=32, batch_size=16, max_epochs=1, max_steps=2,
                                progress_bar=False, warmup_steps=1)
    news = norwegian_news()
    tok = build_tokenizer(config, [news["title"].tolist(), news["abstract"].tolist()])
    assert tok.unk_id == tok.tokenizer.token_to_id("<unk>") and tok.unknown_rate(news["title"].tolist()) == 0.0
    result = train_news_encoder(news, config, tmp_path / "enc")
    assert result.global_step == 2 and np.isfinite(result.metrics["val/loss"])
    saved = load_news_encoder(result.encoder_dir)
    assert saved.tokenizer.tokenizer.token_to_id("<mask>") is not None and saved.config.tokenizer_dir == str(local)


def test_tokenizer_dir_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer_dir .*nowhere does not exist"):
        NewsTokenizer.from_local(tmp_path / "nowhere", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="tokenizer_dir .*empty: no tokenizer.json"):
        NewsTokenizer.from_local(tmp_path / "empty", 2)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not a tokenizers JSON file"):
        NewsTokenizer.from_local(tmp_path / "bad.json", 2)
    with pytest.raises(ValueError, match="cannot be combined with pretrained=True"):
        NewsPretrainConfig(pretrained=True, tokenizer_dir=str(tmp_path))


@pytest.mark.shared
def test_scratch_default_on_shared_adressa_titles(shared_data):
    news = pd.read_csv(shared_data / "adressa-news-sample" / "news.tsv", sep="\t", header=None, quoting=3,
                       keep_default_na=False)
    titles = news[3].tolist()
    order = np.random.default_rng(0).permutation(len(titles))
    cut = int(0.8 * len(titles))
    tok = NewsTokenizer.train([titles[i] for i in order[:cut]], n_views=2)
    assert tok.unknown_rate([titles[i] for i in order[cut:]]) < 0.01

"""The scratch WordPiece tokenizer of the news pre-trainer is a function of its corpus: tokenizers' WordPiece
trainer numbers the ``##`` continuation tokens in hash-map order (huggingface/tokenizers#1794), so the same
corpus gave differently numbered, and on tied merge counts different, vocabularies from one training to the next,
and with them a different news encoder, news vectors and every figure downstream (issue 22)."""
from builders.prec import synthetic_news

from training.prec.config import NewsPretrainConfig
from training.prec.news_pretrainer import train_news_encoder
from training.prec.tokenization import NewsTokenizer

#: Many pairs of equal count, so a tie broken by token numbers changes which merges are made.
TIED_CORPUS = ["abc abd abe acd ace ade bcd bce bde cde xyz xyw xzw yzw", "qrs qrt qst rst mno mnp mop nop",
               "Wel come to the Tok en izers libr ary .", "Welcome to the tokenizers library"]


def test_the_same_corpus_always_gives_the_same_tokenizer():
    trained = {NewsTokenizer.train(TIED_CORPUS, n_views=2, vocab_size=200, min_frequency=1).to_json()
               for _ in range(12)}
    assert len(trained) == 1


def test_continuation_tokens_stay_plain_vocabulary():
    tok = NewsTokenizer.train(TIED_CORPUS * 3, n_views=2, vocab_size=200, min_frequency=2)
    added = {t.content for t in tok.tokenizer.get_added_tokens_decoder().values()}
    assert added == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[MASK_0]", "[MASK_1]"}
    vocab = tok.tokenizer.get_vocab()
    assert {"##b", "##c", "##z"} <= set(vocab)
    encoding = tok.tokenizer.encode("tokenizers abz", add_special_tokens=False)
    assert any(t.startswith("##") for t in encoding.tokens)
    assert tok.tokenizer.decode(encoding.ids) == "tokenizers abz"
    # a literal "##b" in a text is split like any other text, not matched as a whole token
    assert "##b" not in tok.tokenizer.encode("##b", add_special_tokens=False).tokens


def test_the_same_news_always_give_the_same_news_encoder(tmp_path):
    """The news encoder (tokenizer and weights) that every later asset starts from is a function of its
    catalogue and config: two trainings give the same content version."""
    news = synthetic_news(60, seed=3)
    config = NewsPretrainConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_len=24,
                                vocab_size=300, min_frequency=1, batch_size=16, max_epochs=1, max_steps=3,
                                warmup_steps=1, progress_bar=False, accelerator="cpu")
    first, second = (train_news_encoder(news, config, tmp_path / name) for name in ("a", "b"))
    assert (first.encoder_dir / "tokenizer.json").read_text() == (second.encoder_dir / "tokenizer.json").read_text()
    assert first.model_version == second.model_version

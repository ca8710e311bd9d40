"""Encode-once pair inputs: tokenise each distinct news once, assemble (trigger, candidate) sequences by id.

A full cross-encoder lets trigger and candidate tokens attend to each other in every layer, so unlike a
bi-encoder it cannot cache the trigger's hidden states (or news vectors) and reuse them across candidates: each
pair runs through the whole model. What *can* be shared is tokenisation: ``PairTokenCache`` tokenises every news
a call needs once (token ids cached per news_id for that call) and assembles pair sequences from those ids batch
by batch; pair lengths are known without assembling, so batches are grouped by length (``length_bucketed_batches``)
and padded dynamically.

Two layouts:
  * ``NewsPairInputs`` (PREC tokenizer, backbones "prec" / "scratch"):
    ``[CLS] t_view1 [SEP] t_view2 [SEP] c_view1 [SEP] c_view2 [SEP]`` with the PREC view ids per token and a
    segment id (0: ``[CLS]`` and trigger, 1: candidate);
  * ``HFPairInputs`` (Hugging Face tokenizer, backbone "pretrained"): the views of a side joined by a space,
    placed in the tokenizer's own pair template (BERT: ``[CLS] A [SEP] B [SEP]`` with token types;
    MPNet/RoBERTa: ``<s> A </s></s> B </s>``).
Both cut a too-long pair fairly: the shorter side keeps all its tokens if it fits in half of the budget, the
longer side gets the rest (then, for PREC, the same rule over the views within a side; for HF, the end of the
joined text goes first).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from training.prec.encode_cache import gc_paused
from training.prec.news_views import view_texts
from training.prec.tokenization import NewsTokenizer, fair_budgets

Side = Any          # one side of a pair as an input layout prepares it (see ``side``)
PairSequence = tuple[Any, ...]   # one assembled pair sequence, as ``collate`` takes it


def side_budgets(len_a: int, len_b: int, total: int) -> tuple[int, int]:
    """``fair_budgets`` for two sides: the shorter keeps all its tokens if they fit in half, the longer the rest."""
    if len_a + len_b <= total:
        return len_a, len_b
    if len_a <= len_b:
        a = min(len_a, total // 2)
        return a, min(len_b, total - a)
    b = min(len_b, total // 2)
    return min(len_a, total - b), b


class PairInputs(Protocol):
    """What ``PairTokenCache`` needs from an input layout.

    ``tokenize`` per news -> token data and its text-token count; ``side(tokens, budget)`` -> one side holding at
    most ``budget`` text tokens (memoised per news and budget by the cache); ``join(trigger_side, candidate_side)``
    -> one pair sequence; ``collate`` -> padded arrays.
    """

    tokenizer: Any  # a NewsTokenizer or a Hugging Face tokenizer
    views: tuple[str, ...]
    max_len: int
    n_special: int  # special tokens in one pair sequence

    def tokenize(self, texts: list[list[str]]) -> tuple[list[Any], np.ndarray]: ...
    def side(self, tokens: Any, budget: int) -> Side: ...
    def join(self, trigger: Side, candidate: Side) -> PairSequence: ...
    def collate(self, sequences: Sequence[PairSequence]) -> dict[str, np.ndarray]: ...
    def spec(self) -> dict[str, Any]: ...


def assemble(inputs: PairInputs, trigger: Any, candidate: Any, lengths: tuple[int, int]) -> PairSequence:
    """One pair sequence from two news' token data (``lengths``: their text-token counts)."""
    budget_t, budget_c = side_budgets(*lengths, inputs.max_len - inputs.n_special)
    return inputs.join(inputs.side(trigger, budget_t), inputs.side(candidate, budget_c))


class NewsPairInputs:
    """PREC-tokenizer layout; ``view_ids[i]`` is the view-embedding row of ``views[i]``.

    A pair sequence is ``(ids, view_ids, n_trigger)``: tokens ``[0, n_trigger)`` (``[CLS]`` and the trigger side)
    get segment 0, the candidate side segment 1.
    """

    kind = "news"

    def __init__(self, tokenizer: NewsTokenizer, views: Sequence[str], view_ids: Sequence[int], max_len: int) -> None:
        if len(views) != len(view_ids):
            raise ValueError("views and view_ids must have the same length")
        self.tokenizer = tokenizer
        self.views = tuple(views)
        self.view_ids = tuple(int(v) for v in view_ids)
        self.max_len = int(max_len)
        self.n_special = 1 + 2 * len(self.views)
        if self.max_len <= self.n_special:
            raise ValueError(f"max_len={self.max_len} leaves no room for text ({self.n_special} special tokens)")

    def tokenize(self, texts: list[list[str]]) -> tuple[list[list[list[int]]], np.ndarray]:
        """Per news: per view token ids (each view capped at ``max_len``); and per news the total count."""
        if len(texts) != len(self.views):
            raise ValueError(f"expected {len(self.views)} views, got {len(texts)}")
        encode = self.tokenizer.tokenizer.encode_batch_fast
        with gc_paused():  # (the tokenizer's own tokenize_views insists on its pre-training view count)
            per_view = [[e.ids[: self.max_len] for e in encode(column, add_special_tokens=False)] for column in texts]
            tokens = [list(parts) for parts in zip(*per_view)]
        lengths = np.fromiter((sum(len(v) for v in t) for t in tokens), dtype=np.int64, count=len(tokens))
        return tokens, lengths

    def side(self, tokens: list[list[int]], budget: int) -> tuple[list[int], list[int]]:
        """``view_1 [SEP] view_2 [SEP] ...`` with at most ``budget`` text tokens (fair over the views)."""
        sep = self.tokenizer.sep_id
        ids: list[int] = []
        views: list[int] = []
        for view_id, view, keep in zip(self.view_ids, tokens, fair_budgets([len(v) for v in tokens], budget)):
            ids.extend(view[:keep])
            ids.append(sep)
            views.extend([view_id] * (keep + 1))
        return ids, views

    def join(self, trigger: tuple[list[int], list[int]], candidate: tuple[list[int], list[int]]) -> PairSequence:
        return [self.tokenizer.cls_id, *trigger[0], *candidate[0]], [0, *trigger[1], *candidate[1]], \
            1 + len(trigger[0])

    def assemble(self, trigger: list[list[int]], candidate: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
        """(ids, view ids, segment ids) of one pair, at most ``max_len`` long."""
        ids, views, n_trigger = assemble(self, trigger, candidate, (sum(map(len, trigger)), sum(map(len, candidate))))
        return ids, views, [0] * n_trigger + [1] * (len(ids) - n_trigger)

    def collate(self, sequences: Sequence[PairSequence]) -> dict[str, np.ndarray]:
        width = max(len(s[0]) for s in sequences)
        input_ids = np.full((len(sequences), width), self.tokenizer.pad_id, dtype=np.int64)
        view_ids = np.zeros((len(sequences), width), dtype=np.int64)
        segment_ids = np.zeros((len(sequences), width), dtype=np.int64)
        attention = np.zeros((len(sequences), width), dtype=np.int64)
        for row, (ids, views, n_trigger) in enumerate(sequences):
            n = len(ids)
            input_ids[row, :n], view_ids[row, :n], attention[row, :n] = ids, views, 1
            segment_ids[row, n_trigger:n] = 1
        return {"input_ids": input_ids, "view_ids": view_ids, "segment_ids": segment_ids, "attention_mask": attention}

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "views": list(self.views), "view_ids": list(self.view_ids),
                "max_len": self.max_len, "tokenizer_views": self.tokenizer.n_views}


@dataclass(frozen=True)
class PairTemplate:
    """Where a Hugging Face tokenizer puts its special tokens (and token types) around a pair (A, B)."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    middle_types: tuple[int, ...]
    suffix_types: tuple[int, ...]
    type_a: int
    type_b: int

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def pair_template(tokenizer: Any) -> PairTemplate:
    """Read the tokenizer's native pair encoding by encoding a probe pair of two single-token words."""
    for word_a, word_b in (("a", "b"), ("x", "y"), ("the", "and"), ("hello", "world")):
        a = tokenizer(word_a, add_special_tokens=False)["input_ids"]
        b = tokenizer(word_b, add_special_tokens=False)["input_ids"]
        if len(a) == 1 and len(b) == 1 and a != b:
            break
    else:  # pragma: no cover - every real vocabulary has one of these as single tokens
        raise ValueError("could not probe the tokenizer's pair template")
    encoded = tokenizer(word_a, word_b, return_token_type_ids=True)
    ids = list(encoded["input_ids"])
    types = list(encoded.get("token_type_ids") or [0] * len(ids))
    ia = ids.index(a[0])
    ib = ia + 1 + ids[ia + 1:].index(b[0])
    return PairTemplate(tuple(ids[:ia]), tuple(ids[ia + 1: ib]), tuple(ids[ib + 1:]), tuple(types[:ia]),
                        tuple(types[ia + 1: ib]), tuple(types[ib + 1:]), types[ia], types[ib])


class HFPairInputs:
    """Hugging Face tokenizer layout (``token_type_ids`` only when the backbone takes them)."""

    kind = "hf"
    joiner = " "

    def __init__(self, tokenizer: Any, views: Sequence[str], max_len: int, use_token_types: bool) -> None:
        self.tokenizer = tokenizer
        self.views = tuple(views)
        self.max_len = int(max_len)
        self.use_token_types = bool(use_token_types)
        self.template = pair_template(tokenizer)
        self.n_special = self.template.n_special
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if self.max_len <= self.n_special:
            raise ValueError(f"max_len={self.max_len} leaves no room for text ({self.n_special} special tokens)")

    def tokenize(self, texts: list[list[str]]) -> tuple[list[list[int]], np.ndarray]:
        """Per news: ids of its views joined by a space (no specials, capped at ``max_len``)."""
        joined = [self.joiner.join(t.strip() for t in parts if t and t.strip()) for parts in zip(*texts)]
        if not joined:
            return [], np.zeros(0, dtype=np.int64)
        with gc_paused():  # (sliced here: truncation=True would leave truncation settings on the tokenizer)
            encoded = self.tokenizer(joined, add_special_tokens=False, return_attention_mask=False,
                                     return_token_type_ids=False)["input_ids"]
            tokens = [ids[: self.max_len] for ids in encoded]
        return tokens, np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))

    def side(self, tokens: list[int], budget: int) -> list[int]:
        return tokens[:budget]

    def join(self, trigger: list[int], candidate: list[int]) -> PairSequence:
        t = self.template
        ids = [*t.prefix, *trigger, *t.middle, *candidate, *t.suffix]
        types = [*t.prefix_types, *([t.type_a] * len(trigger)), *t.middle_types, *([t.type_b] * len(candidate)),
                 *t.suffix_types]
        return ids, types

    def assemble(self, trigger: list[int], candidate: list[int]) -> tuple[list[int], list[int]]:
        """(ids, token type ids) of one pair in the tokenizer's template, at most ``max_len`` long."""
        return assemble(self, trigger, candidate, (len(trigger), len(candidate)))

    def collate(self, sequences: Sequence[PairSequence]) -> dict[str, np.ndarray]:
        width = max(len(s[0]) for s in sequences)
        input_ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        types = np.zeros((len(sequences), width), dtype=np.int64)
        attention = np.zeros((len(sequences), width), dtype=np.int64)
        for row, (ids, type_ids) in enumerate(sequences):
            input_ids[row, : len(ids)], types[row, : len(ids)], attention[row, : len(ids)] = ids, type_ids, 1
        out = {"input_ids": input_ids, "attention_mask": attention}
        if self.use_token_types:
            out["token_type_ids"] = types
        return out

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "views": list(self.views), "max_len": self.max_len,
                "use_token_types": self.use_token_types, "joiner": self.joiner}


def check_columns(table: pd.DataFrame, required: Sequence[str], what: str) -> None:
    """ValueError naming the missing columns (and the ones present); TypeError for a non-DataFrame."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


class PairTokenCache:
    """Token ids of the distinct news one call needs, tokenised once; assembles pair batches by row.

    ``ids_by_column``: e.g. ``{"trigger_id": [...], "candidate_id": [...]}``; every id must be in ``news``
    (ValueError naming a few missing ones per column). Duplicate news_ids in ``news``: the first row wins.
    """

    def __init__(self, inputs: PairInputs, news: pd.DataFrame, ids_by_column: dict[str, Sequence[Any]]) -> None:
        check_columns(news, ["news_id"], "the news table")
        try:
            view_texts(news.iloc[:0], inputs.views)
        except KeyError as exc:  # a view's source column is missing
            raise ValueError(exc.args[0]) from None
        self.inputs = inputs
        first_row: dict[str, int] = {}
        for position, news_id in enumerate(news["news_id"].astype(str).tolist()):
            first_row.setdefault(news_id, position)
        wanted: dict[str, list[str]] = {}
        for column, values in ids_by_column.items():
            values = [v if type(v) is str else str(v) for v in values]
            missing = [v for v in values if v not in first_row]
            if missing:
                missing = list(dict.fromkeys(missing))
                raise ValueError(f"{column}: {len(missing)} id(s) not in the news table, e.g. {missing[:5]}")
            wanted[column] = values
        local = {news_id: k for k, news_id in enumerate(dict.fromkeys(v for vs in wanted.values() for v in vs))}
        #: distinct news of the call, in order of first appearance (row k of ``tokens`` / ``lengths``)
        self.ids = list(local)
        subset = news.iloc[[first_row[news_id] for news_id in self.ids]]
        self.tokens, self.lengths = inputs.tokenize(view_texts(subset, inputs.views))
        self.rows = {column: np.fromiter((local[v] for v in values), dtype=np.int64, count=len(values))
                     for column, values in wanted.items()}
        self._sides: dict[tuple[int, int], Side] = {}
        self._length_list: list[int] = self.lengths.tolist()
        self._text_budget = inputs.max_len - inputs.n_special

    def pair_lengths(self, trigger_rows: np.ndarray, candidate_rows: np.ndarray) -> np.ndarray:
        """Assembled sequence length of each pair (without assembling it)."""
        budget = self.inputs.max_len - self.inputs.n_special
        return self.inputs.n_special + np.minimum(budget, self.lengths[trigger_rows] + self.lengths[candidate_rows])

    def sequence(self, trigger_row: int, candidate_row: int) -> PairSequence:
        """One assembled pair; each (news, budget) side is built once per call and reused."""
        lengths = self._length_list
        budgets = side_budgets(lengths[trigger_row], lengths[candidate_row], self._text_budget)
        sides = []
        for row, budget in zip((trigger_row, candidate_row), budgets):
            key = (row, budget)
            side = self._sides.get(key)
            if side is None:
                side = self._sides[key] = self.inputs.side(self.tokens[row], budget)
            sides.append(side)
        return self.inputs.join(*sides)

    def batch(self, trigger_rows: Sequence[int] | np.ndarray, candidate_rows: Sequence[int] | np.ndarray,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Dynamically padded model inputs for the pairs (trigger_rows[i], candidate_rows[i])."""
        with gc_paused():
            sequences = [self.sequence(t, c) for t, c in zip(np.asarray(trigger_rows).tolist(),
                                                             np.asarray(candidate_rows).tolist())]
        arrays = self.inputs.collate(sequences)
        return {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in arrays.items()}

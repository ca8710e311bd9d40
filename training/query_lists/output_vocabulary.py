"""A student's output layer cut to the tokens its lists can use (issue 24: the faster student).

SmolLM2's output layer scores all 49,152 tokens at every generated token: about as much compute as seven of its
decoder layers, whatever the depth, so a student with fewer layers alone is at most ~1.4x faster than an 8-layer
teacher. A query-list student writes search queries about the news and the user's own words:
:func:`list_vocabulary` is the token ids of the news titles and abstracts (as written and lower-cased), of the
prompts and targets it trains on, and the tokenizer's special tokens. :func:`restrict_output` swaps the model's
output layer for :class:`RestrictedOutput`, which computes the logits of those tokens only (rows of the same,
tied weight) and gives every other token the lowest finite logit: greedy decoding, sampling, the SFT loss and the
distillation divergence keep their form, and no token outside the vocabulary is ever written.

The vocabulary is fixed when the student is trained: a word that enters the news later is not written until the
next distillation. It is saved beside the weights (:data:`VOCABULARY_FILE`, by :func:`save_student`) and applied
again by :func:`load_student`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: The kept token ids, beside a saved student's weights.
VOCABULARY_FILE = "output_vocabulary.json"


def list_vocabulary(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str], batch_size: int = 1024) -> list[int]:
    """Sorted token ids of ``texts`` (each as given and lower-cased) and of the tokenizer's special tokens."""
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None)
    batch: list[str] = []

    def flush() -> None:
        if not batch:
            return
        for encoded in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            ids.update(encoded)
        batch.clear()

    for text in texts:
        batch.extend((str(text), str(text).lower()))
        if len(batch) >= batch_size:
            flush()
    flush()
    return sorted(ids)


class RestrictedOutput(torch.nn.Module):
    """An output layer that scores only ``kept`` tokens: ``full``'s rows for them, the lowest finite logit for
    the others. ``full`` (its weight, maybe tied to the input embeddings) is kept and trained as before."""

    kept: torch.Tensor

    def __init__(self, full: torch.nn.Linear, kept: Sequence[int]) -> None:
        super().__init__()
        n_tokens = int(full.out_features)
        if not kept or min(kept) < 0 or max(kept) >= n_tokens:
            raise ValueError(f"kept token ids must be a non-empty subset of [0, {n_tokens}), got {len(kept)} ids "
                             f"from {min(kept, default=None)} to {max(kept, default=None)}")
        self.full = full
        self.register_buffer("kept", torch.tensor(sorted(set(kept)), dtype=torch.long), persistent=False)

    @property
    def n_kept(self) -> int:
        return int(self.kept.numel())

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        bias = self.full.bias.index_select(0, self.kept) if self.full.bias is not None else None
        scores = F.linear(hidden, self.full.weight.index_select(0, self.kept), bias)
        logits = scores.new_full((*scores.shape[:-1], self.full.out_features), torch.finfo(scores.dtype).min)
        return logits.index_copy(scores.dim() - 1, self.kept, scores)


def restrict_output(model: PreTrainedModel, kept: Sequence[int]) -> PreTrainedModel:
    """``model`` (changed in place) with its output layer restricted to ``kept`` token ids (:class:`RestrictedOutput`);
    restricting a restricted model replaces its vocabulary."""
    head = model.get_output_embeddings()
    if isinstance(head, RestrictedOutput):
        head = head.full
    if not isinstance(head, torch.nn.Linear):
        raise TypeError(f"{type(model).__name__}'s output layer is a {type(head).__name__}, not a Linear to restrict")
    model.set_output_embeddings(RestrictedOutput(head, kept))
    return model


def output_vocabulary(model: Any) -> list[int] | None:
    """The kept token ids of a restricted model; None when its output layer is whole."""
    head = model.get_output_embeddings()
    return head.kept.tolist() if isinstance(head, RestrictedOutput) else None


@contextmanager
def whole_output(model: PreTrainedModel) -> Iterator[PreTrainedModel]:
    """``model`` with its whole output layer for the block (to time or score it unrestricted), restricted again
    after."""
    head = model.get_output_embeddings()
    if isinstance(head, RestrictedOutput):
        model.set_output_embeddings(head.full)
    try:
        yield model
    finally:
        model.set_output_embeddings(head)


def save_student(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> None:
    """Save ``model`` and ``tokenizer`` to ``folder`` as a plain transformers model, plus its vocabulary
    (:data:`VOCABULARY_FILE`) when its output layer is restricted."""
    folder = Path(folder)
    kept = output_vocabulary(model)
    with whole_output(model):
        model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    if kept is not None:
        (folder / VOCABULARY_FILE).write_text(json.dumps({"n_tokens": len(kept), "token_ids": kept}))


def load_student(folder: str | Path, torch_threads: int = 2) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` saved by :func:`save_student` (``training.slm.lora_sft.load_causal_lm``), with its
    output layer restricted again when the folder has a vocabulary."""
    from training.slm.lora_sft import load_causal_lm

    model, tokenizer = load_causal_lm(folder, torch_threads)
    path = Path(folder) / VOCABULARY_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        kept = saved.get("token_ids")
        if not isinstance(kept, list) or len(kept) != saved.get("n_tokens"):
            raise ValueError(f"{path}: field token_ids must be a list of n_tokens ({saved.get('n_tokens')}) ids")
        restrict_output(model, kept)
    return model, tokenizer


def student_version(folder: str | Path) -> str:
    """A short id of a saved student's content: its ``config.json``, the bytes of its weight files and its
    vocabulary (two students of one architecture differ here, unlike ``training.slm.lora_sft.base_version``)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    files = [folder / "config.json", *sorted(folder.glob("*.safetensors")), folder / VOCABULARY_FILE]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]

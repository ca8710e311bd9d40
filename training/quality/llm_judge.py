"""A pluggable LLM quality judge for (trigger, candidate) news pairs, with prompt variants A/B/C.

The trigger is the article a user is reading, the candidate an article that could be recommended under
it (Bing "Explore Further", KDD'25). The judge rates the candidate 0-4:

* ``A`` - label definitions 0-4, answer with the label: the score is the most likely label token at the
  answer position (greedy decoding constrained to the five labels), as a float.
* ``B`` - the same prompt; the score is the expected label ``sum_i p_i * i``, ``p`` the softmax over the
  five label tokens' log-probabilities at the answer position.
* ``C`` - B plus "reason over aspects first" (topicality, authority, clickbait/spam): the model greedily
  generates a short reasoning (``max_reason_tokens``), then the label probabilities at the answer
  position after it are read as in B.

Any local folder that ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained`` load offline works,
e.g. SmolLM2-135M-Instruct from :func:`training.quality.smollm.smollm2_dir`::

    judge = LlmJudge(smollm2_dir(cache_dir), variant="B", torch_threads=2)
    triggers, candidates = judge_news_text(news, trigger_ids), judge_news_text(news, candidate_ids)
    scores = judge.score(triggers, candidates)             # np.ndarray in [0, 4]
    judge.pairs_per_second                                  # throughput of that call

Label tokens are the ids of "0".."4"; where a tokenizer also has single-token " 3"-style variants, each
label's log-probability is the logsumexp over its variants. Where the space is a token of its own
(SmolLM2: " 3" -> "Ġ", "3"), the answer prefix ends with that space so the next token is the bare digit.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training.prec.news_views import news_sources
from training.torch_threads import torch_threads as threads_during

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedTokenizerBase

PROMPT_VARIANTS = ("A", "B", "C")
LABELS = ("0", "1", "2", "3", "4")

# Listed from 4 down to 0 and answered after "Rating:": on SmolLM2-135M-Instruct, variant B ranked 32
# hand-written pairs (on-topic / off-topic / spam) with pairwise accuracy 0.84 (0.90 with bare "2 = fair",
# "1 = poor"), against 0.62 for the definitions listed 0-first and answered after "Label:". The source-authority
# sentence came with the category/source line of each article (judge_news_text, issue 22); not tuned.
LABEL_DEFINITIONS = (
    "Rate the CANDIDATE news article as a recommendation for a reader of the TRIGGER article.\n"
    "Each article shows its category and, when known, its source: weigh the source's authority "
    "(wire services and established papers above viral sites and content farms).\n"
    "4 = excellent: on-topic, authoritative source, not clickbait\n"
    "3 = good: on-topic, reliable source\n"
    "2 = fair: somewhat related\n"
    "1 = poor: barely related, thin, clickbait or a weak source\n"
    "0 = spam, off-topic or harmful\n"
)
#: Variants A and B: label definitions, answer with the label.
PROMPT_LABEL = LABEL_DEFINITIONS + "Answer with one digit."
#: Variant C: the same definitions, reason over aspects first.
PROMPT_REASON = LABEL_DEFINITIONS + (
    "First reason briefly about topicality (same story or category?), authority (is the source credible?) "
    "and clickbait, thin text or spam. Then give the rating."
)
PAIR_TEMPLATE = "TRIGGER: {trigger}\nCANDIDATE: {candidate}"
#: What the judge reads of one news (:func:`judge_news_text`); the source part only where it is known.
NEWS_TEMPLATE = "[category: {category}{source}] {text}"
ANSWER_PREFIX = "Rating:"
REASON_PREFIX = "Reasoning:"
#: Progress bars appear from this many batches on (``progress=None``).
PROGRESS_MIN_BATCHES = 4


# --------------------------------------------------------------------------- pure scoring pieces
def reasoning_before_label(text: str) -> str:
    """Prompt C's generated reasoning up to any rating the model wrote itself (that label is read separately)."""
    cut = text.find(ANSWER_PREFIX.rstrip(":"))
    return (text[:cut] if cut >= 0 else text).rstrip()


def label_probabilities(label_logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (five label log-probs or logits per row)."""
    x = np.asarray(label_logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def expected_label(label_logits: np.ndarray) -> np.ndarray:
    """Rows of five label log-probs/logits -> ``sum_i softmax_i * i`` in [0, 4] (variants B and C)."""
    probs = label_probabilities(label_logits)
    return probs @ np.arange(probs.shape[-1], dtype=np.float64)


def argmax_label(label_logits: np.ndarray) -> np.ndarray:
    """Rows of five label log-probs/logits -> the most likely label as a float (variant A)."""
    return np.argmax(np.asarray(label_logits), axis=-1).astype(np.float64)


@dataclass(frozen=True)
class JudgeResult:
    """One :meth:`LlmJudge.score_details` call."""

    scores: np.ndarray              # (n,) float64 in [0, 4]
    label_logprobs: np.ndarray      # (n, 5) log-probabilities of the label tokens "0".."4"
    reasons: list[str] | None       # variant C: the generated reasoning per pair, else None
    seconds: float
    pairs_per_second: float

    @property
    def label_probs(self) -> np.ndarray:
        """(n, 5) softmax over the five label tokens."""
        return label_probabilities(self.label_logprobs)


def _truncate(text: str, max_chars: int) -> str:
    text = " ".join(str(text).split())
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if text[max_chars] != " " and space > max_chars // 2:   # drop a partly cut last word
        cut = cut[:space]
    return cut.rstrip() + "..."


def judge_news_text(news: pd.DataFrame, ids: Sequence[str]) -> list[str]:
    """What the judge reads of each news id (every judge, every caller): ``[category: C; source: S] title.
    abstract``. The source is the news table's ``source`` column where it has one, else the publisher its
    ``url`` names (``training.prec.news_views.news_sources``); where neither is known (real MIND) the source
    part is left out."""
    missing = [c for c in ("news_id", "category", "title", "abstract") if c not in news.columns]
    if missing:
        raise ValueError(f"news table lacks column(s) {missing} that the judge reads")
    table = news.drop_duplicates("news_id").set_index("news_id")
    ids = list(ids)
    unknown = [i for i in dict.fromkeys(ids) if i not in table.index]
    if unknown:
        raise ValueError(f"{len(unknown)} news id(s) not in the news table, e.g. {unknown[:5]}")
    rows = table.loc[ids]
    sources = news_sources(rows)
    out = []
    for category, title, abstract, source in zip(rows["category"], rows["title"].fillna(""),
                                                  rows["abstract"].fillna(""), sources):
        text = f"{title}. {abstract}".strip() if abstract else str(title)
        out.append(NEWS_TEMPLATE.format(category=category, source=f"; source: {source}" if source else "", text=text))
    return out


def judge_messages(trigger: str, candidate: str, variant: str, max_text_chars: int = 300) -> tuple[str, str]:
    """(system, user) texts of one pair for ``variant``: the instructions (A/B: answer with the label, C:
    reason first) and the pair, each text cut to ``max_text_chars``. The answer starts after them with
    :data:`ANSWER_PREFIX` (A/B) or :data:`REASON_PREFIX` (C). Shared by :class:`LlmJudge` and the
    OpenAI-compatible judge (``training/quality/openai_judge.py``)."""
    if variant not in PROMPT_VARIANTS:
        raise ValueError(f"variant must be one of {PROMPT_VARIANTS}, got {variant!r}")
    user = PAIR_TEMPLATE.format(trigger=_truncate(trigger, max_text_chars),
                                candidate=_truncate(candidate, max_text_chars))
    return (PROMPT_REASON if variant == "C" else PROMPT_LABEL), user


def chat_messages(system: str, user: str, *, system_role: bool = True) -> list[dict[str, str]]:
    """The chat turns of one prompt; without ``system_role`` (templates that reject one) the instructions
    open the user turn."""
    if system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return [{"role": "user", "content": f"{system}\n\n{user}"}]


class LlmJudge:
    """Scores (trigger, candidate) news pairs 0-4 with a local causal LM; see the module docstring.

    ``model_dir``: a local transformers folder (loaded with ``local_files_only``); ``variant``: one of
    :data:`PROMPT_VARIANTS`; ``max_reason_tokens``: reasoning length for C; ``batch_size``: pairs per
    forward pass (left padded, sorted by length); ``max_text_chars``: each trigger / candidate text
    (:func:`judge_news_text`: category, source, title, abstract) is cut to this many characters;
    ``torch_threads``: ``torch.set_num_threads`` while scoring, restored afterwards (None leaves it);
    ``progress``: tqdm over batches (None: from :data:`PROGRESS_MIN_BATCHES` batches on).
    """

    def __init__(self, model_dir: str | Path, variant: str = "B", *, max_reason_tokens: int = 32,
                 batch_size: int = 8, max_text_chars: int = 300, torch_threads: int | None = None,
                 progress: bool | None = None, dtype: str = "float32") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if variant not in PROMPT_VARIANTS:
            raise ValueError(f"variant must be one of {PROMPT_VARIANTS}, got {variant!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model_dir = Path(model_dir)
        self.variant = variant
        self.max_reason_tokens = int(max_reason_tokens)
        self.batch_size = int(batch_size)
        self.max_text_chars = int(max_text_chars)
        self.torch_threads = torch_threads
        self.progress = progress
        self.last_result: JudgeResult | None = None

        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(str(self.model_dir),
                                                                                local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"the tokenizer in {self.model_dir} has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        with threads_during(torch_threads):
            self.model = AutoModelForCausalLM.from_pretrained(
                str(self.model_dir), dtype=getattr(torch, dtype), local_files_only=True)
        self.model.eval()
        self.uses_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.label_token_ids, space_is_own_token = self._find_label_tokens()
        # Where " 3" is "<space>" + "3", end the prefix with the space so the next token is the digit.
        self.answer_prefix = ANSWER_PREFIX + (" " if space_is_own_token else "")
        self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    # ----------------------------------------------------------------------------- tokens, prompts
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _find_label_tokens(self) -> tuple[tuple[tuple[int, ...], ...], bool]:
        vocab = self.tokenizer.get_vocab()
        unk = self.tokenizer.unk_token_id
        per_label: list[tuple[int, ...]] = []
        for digit in LABELS:
            ids: list[int] = []
            bare = self._encode(digit)
            if len(bare) == 1 and bare[0] != unk:
                ids.append(bare[0])
            elif digit in vocab:
                ids.append(vocab[digit])
            else:
                raise ValueError(
                    f"label {digit!r} is not a single token for the tokenizer in {self.model_dir} "
                    f"(encodes to {bare}); the judge reads one label token at the answer position")
            spaced = self._encode(" " + digit)
            candidates = [spaced[0]] if len(spaced) == 1 else []
            candidates += [vocab[p + digit] for p in ("Ġ", "▁") if p + digit in vocab]
            ids += [i for i in candidates if i not in ids and i != unk]
            per_label.append(tuple(ids))
        flat = [i for ids in per_label for i in ids]
        if len(flat) != len(set(flat)):
            raise ValueError(f"label tokens overlap between labels: {per_label}")
        spaced = self._encode(" 3")
        space_is_own_token = len(spaced) > 1 and spaced[-1] in per_label[3]
        return tuple(per_label), space_is_own_token

    def _messages_text(self, system: str, user: str, assistant_prefix: str) -> str:
        if not self.uses_chat_template:
            return f"{system}\n\n{user}\n\n{assistant_prefix}"
        from jinja2 import TemplateError

        try:
            text = self.tokenizer.apply_chat_template(chat_messages(system, user), tokenize=False,
                                                      add_generation_prompt=True)
        except (TemplateError, ValueError):  # templates without a system role
            text = self.tokenizer.apply_chat_template(chat_messages(system, user, system_role=False),
                                                      tokenize=False, add_generation_prompt=True)
        if not isinstance(text, str):  # tokenize=False: the template's text
            raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, not text")
        return text + assistant_prefix

    def prompt(self, trigger: str, candidate: str) -> str:
        """The full text fed to the model for one pair, ending where the model continues: at the label
        (A/B, after :attr:`answer_prefix`) or at the reasoning (C, after ``"Reasoning:"``)."""
        system, user = judge_messages(trigger, candidate, self.variant, self.max_text_chars)
        return self._messages_text(system, user, REASON_PREFIX if self.variant == "C" else self.answer_prefix)

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        add_special = not self.uses_chat_template   # chat templates already hold their special tokens
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=add_special)["input_ids"]]

    def _batches(self, token_ids: list[list[int]], desc: str) -> Iterator[tuple[np.ndarray, BatchEncoding]]:
        """(indices, left-padded tensors) per batch, longest prompts first."""
        from tqdm.auto import tqdm

        order = np.argsort([-len(ids) for ids in token_ids], kind="stable")
        chunks = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        show = self.progress if self.progress is not None else len(chunks) >= PROGRESS_MIN_BATCHES
        for idx in tqdm(chunks, desc=desc, unit="batch", disable=not show, leave=False):
            batch = self.tokenizer.pad({"input_ids": [token_ids[i] for i in idx]},
                                       padding=True, return_tensors="pt")
            yield idx, batch

    # ----------------------------------------------------------------------------- model passes
    def _label_logprobs(self, texts: Sequence[str]) -> np.ndarray:
        """Label log-probs at the end of each text; the texts' shared opening (instructions and chat template,
        about half of each prompt) runs once (``training.slm.shared_prefix``)."""
        import torch

        from training.slm.shared_prefix import PromptOpening

        token_ids = self._tokenize(texts)
        opening = PromptOpening.of(self.model, token_ids)
        if opening is not None:
            token_ids = [ids[opening.length:] for ids in token_ids]
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float64)
        for idx, batch in self._batches(token_ids, desc=f"judge {self.variant}"):
            mask = batch["attention_mask"]
            kwargs = {"logits_to_keep": 1} if self._logits_to_keep else {}
            if opening is not None:
                output = opening.forward(self.model, batch["input_ids"], mask, **kwargs)
            else:
                output = self.model(input_ids=batch["input_ids"], attention_mask=mask,
                                    position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=False, **kwargs)
            if output.logits is None:
                raise RuntimeError(f"{self.model_dir}: the model's output has no logits")
            logits = output.logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            per_label = [torch.logsumexp(logp[:, list(ids)], dim=-1) for ids in self.label_token_ids]
            out[idx] = torch.stack(per_label, dim=-1).double().numpy()
        return out

    def _generate_reasons(self, texts: Sequence[str]) -> list[str]:
        reasons = [""] * len(texts)
        for idx, batch in self._batches(self._tokenize(texts), desc="judge C reasoning"):
            generated = self.model.generate(
                **batch, max_new_tokens=self.max_reason_tokens, do_sample=False, num_beams=1,
                pad_token_id=self.tokenizer.pad_token_id)
            new_tokens = generated[:, batch["input_ids"].shape[1]:]
            for i, ids in zip(idx, new_tokens):
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                if not isinstance(text, str):  # one sequence decodes to one text
                    raise TypeError(f"tokenizer.decode returned {type(text).__name__}, not text")
                reasons[i] = reasoning_before_label(text)
        return reasons

    # ----------------------------------------------------------------------------- public API
    def score_details(self, triggers: Sequence[str], candidates: Sequence[str]) -> JudgeResult:
        """Scores plus label log-probs, reasoning (C) and throughput; also kept as :attr:`last_result`."""
        import torch

        if len(triggers) != len(candidates):
            raise ValueError(f"{len(triggers)} triggers but {len(candidates)} candidates")
        start = time.perf_counter()
        reasons = None
        with threads_during(self.torch_threads), torch.inference_mode():
            texts = [self.prompt(t, c) for t, c in zip(triggers, candidates)]
            if self.variant == "C" and texts:
                reasons = self._generate_reasons(texts)
                texts = [f"{t}{r}\n{self.answer_prefix}" for t, r in zip(texts, reasons)]
            label_logprobs = (self._label_logprobs(texts) if texts
                              else np.zeros((0, len(LABELS)), dtype=np.float64))
        scores = argmax_label(label_logprobs) if self.variant == "A" else expected_label(label_logprobs)
        seconds = time.perf_counter() - start
        self.last_result = JudgeResult(scores=scores, label_logprobs=label_logprobs, reasons=reasons,
                                       seconds=seconds,
                                       pairs_per_second=len(texts) / seconds if seconds > 0 else 0.0)
        return self.last_result

    def score(self, triggers: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """(n,) float scores in [0, 4]: A the argmax label, B/C the expected label."""
        return self.score_details(triggers, candidates).scores

    @property
    def pairs_per_second(self) -> float | None:
        """Throughput of the last :meth:`score` / :meth:`score_details` call (None before any)."""
        return None if self.last_result is None else self.last_result.pairs_per_second

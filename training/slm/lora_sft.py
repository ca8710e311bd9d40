"""Supervised fine-tuning of a small causal LM with peft LoRA, in fp32 on CPU.

The loss is cross-entropy on the answer tokens only (prompt and padding are labelled -100). fp32 is
explicit: half precision on CPU is slow and peft's LoRA layers misbehave with it. A saved adapter is
versioned by a content hash of its weights; :func:`load_generator_model` merges it into the base
weights so it costs nothing at inference.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from training.config_dict import ConfigDict
from training.slm.prompts import chat_prompt
from training.staging import staged_dir
from training.torch_threads import torch_threads

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from training.slm.causal_lm import CausalLM

ADAPTER_META_FILE = "newsforge_adapter.json"
IGNORE_INDEX = -100


#: The attention projections a LoRA adapter wraps by default (SFT and the GRPO policy).
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class LoraSftConfig(ConfigDict):
    """LoRA SFT settings. ``max_steps`` > 0 trains exactly that many steps (cycling epochs as needed);
    0 trains ``epochs`` full passes. ``full_finetune`` trains all weights instead (benchmark baseline)."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = LORA_TARGET_MODULES
    lr: float = 1e-3
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 8
    max_len: int = 128
    seed: int = 0
    torch_threads: int = 2
    full_finetune: bool = False
    task: str = "news"
    top_layers: int = 0   # > 0: adapters only in the last N decoder layers, so backward stops there (CPU time)

    def __post_init__(self) -> None:
        for name in ("rank", "batch_size", "max_len", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"LoraSftConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.torch_threads < 0:
            raise ValueError(f"LoraSftConfig.torch_threads must be >= 0 (0: unchanged), got {self.torch_threads}")
        if self.top_layers < 0:
            raise ValueError(f"LoraSftConfig.top_layers must be >= 0, got {self.top_layers}")
        if self.max_steps < 0 or self.lr <= 0 or not 0 <= self.dropout < 1:
            raise ValueError("LoraSftConfig needs max_steps >= 0, lr > 0 and 0 <= dropout < 1")


def load_causal_lm(model_dir: str | Path, torch_threads: int = 2) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` from a local folder, offline, fp32, eval mode; left padding, and the eos
    token as pad token where the tokenizer has none. Sets ``torch.set_num_threads(torch_threads)``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a transformers model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer in {model_dir} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
    model.eval()
    return model, tokenizer


def sft_examples(tokenizer: PreTrainedTokenizerBase, prompts: list[str], targets: list[str], max_len: int,
                 task: str = "news") -> list[dict[str, Any]]:
    """Tokenised examples ``{input_ids, labels, prompt_cut}`` (unpadded): chat prompt + target + eos; labels are
    -100 on the prompt. Too long: the prompt loses tokens from its start (``prompt_cut`` of them), so the target
    survives (a target longer than ``max_len - 1`` is cut at its end)."""
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token to end the targets with")
    examples = []
    for prompt, target in zip(prompts, targets):
        prompt_ids = tokenizer(chat_prompt(tokenizer, prompt, task=task), add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"][: max_len - 1]
        target_ids = target_ids + [tokenizer.eos_token_id]
        room = max_len - len(target_ids)
        n_prompt = len(prompt_ids)
        prompt_ids = prompt_ids[len(prompt_ids) - room:] if room < len(prompt_ids) else prompt_ids
        if room <= 0:
            prompt_ids = []
        examples.append({"input_ids": list(prompt_ids) + target_ids,
                         "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids,
                         "prompt_cut": n_prompt - len(prompt_ids)})
    return examples


def collate(examples: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch tensors; padding is masked out and labelled -100."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def target_token_loss(model: CausalLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``model(**batch).loss`` (mean next-token cross-entropy over the labelled tokens) with the output layer
    applied at the labelled positions only: a prompt's tokens (about four fifths of each example) skip
    SmolLM2's 49k-word output layer, about a fifth of a training step."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          use_cache=False).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    logits = causal.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep])


def batch_schedule(n_examples: int, config: LoraSftConfig) -> list[list[int]]:
    """Example indices per step: seeded shuffles per epoch, capped (or extended) to ``max_steps``."""
    generator = torch.Generator().manual_seed(config.seed)
    per_epoch = math.ceil(n_examples / config.batch_size)
    n_steps = config.max_steps or per_epoch * config.epochs
    steps: list[list[int]] = []
    while len(steps) < n_steps:
        order = torch.randperm(n_examples, generator=generator).tolist()
        steps += [order[i: i + config.batch_size] for i in range(0, n_examples, config.batch_size)]
    return steps[:n_steps]


@dataclass
class SftResult:
    """One :func:`train_lora` run."""

    model: Any                       # the peft model (or the plain model with full_finetune)
    losses: list[float] = field(default_factory=list)
    n_steps: int = 0
    train_tokens: int = 0            # non-padding tokens seen
    seconds: float = 0.0             # the training loop only
    trainable_params: int = 0
    total_params: int = 0
    tokenizer: Any = None
    n_cut_prompts: int = 0           # examples whose prompt lost its opening to ``max_len``

    @property
    def first_loss(self) -> float:
        return self.losses[0] if self.losses else math.nan

    @property
    def last_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.seconds if self.seconds > 0 else 0.0


def with_lora(model: PreTrainedModel, config: LoraSftConfig) -> PeftModel:
    """Wrap ``model`` with fresh LoRA adapters (only they are trainable)."""
    from peft import LoraConfig, get_peft_model

    layers = None
    if config.top_layers:
        n_layers = int(model.config.num_hidden_layers)
        layers = list(range(max(0, n_layers - config.top_layers), n_layers))
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(config.target_modules), task_type="CAUSAL_LM", bias="none",
                      layers_to_transform=layers)
    return get_peft_model(model, lora)


def train_lora(model_dir: str | Path, prompts: list[str], targets: list[str],
               config: LoraSftConfig | None = None, out_dir: str | Path | None = None,
               progress: bool = True) -> SftResult:
    """SFT on (user message, target answer) pairs; Adam on the trainable parameters only, deterministic
    for a seed. ``out_dir``: also :func:`save_adapter` there."""
    config = config or LoraSftConfig()
    if not prompts:
        raise ValueError("train_lora needs at least one example")
    model: PreTrainedModel | PeftModel
    model, tokenizer = load_causal_lm(model_dir, config.torch_threads)
    with torch_threads(config.torch_threads):
        torch.manual_seed(config.seed)
        if config.full_finetune:
            for p in model.parameters():
                p.requires_grad_(True)
        else:
            model = with_lora(model, config)
        examples = sft_examples(tokenizer, prompts, targets, config.max_len, task=config.task)
        schedule = batch_schedule(len(examples), config)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=config.lr)
        result = SftResult(model=model, tokenizer=tokenizer, trainable_params=sum(p.numel() for p in params),
                           total_params=sum(p.numel() for p in model.parameters()),
                           n_cut_prompts=sum(e["prompt_cut"] > 0 for e in examples))
        model.train()
        start = time.perf_counter()
        for rows in tqdm(schedule, desc="lora sft" if not config.full_finetune else "full sft", unit="step",
                         disable=not progress):
            batch = collate([examples[r] for r in rows], tokenizer.pad_token_id)
            loss = target_token_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            result.losses.append(float(loss.detach()))
            result.train_tokens += int(batch["attention_mask"].sum())
        result.seconds = time.perf_counter() - start
        result.n_steps = len(schedule)
        model.eval()
    if out_dir is not None:
        save_adapter(model, out_dir, model_dir, config)
    return result


def adapter_hash(model: PeftModel) -> str:
    """sha256 over the adapter's parameter names, shapes and fp32 bytes (the adapter's version)."""
    from peft import get_peft_model_state_dict

    digest = hashlib.sha256()
    for name, tensor in sorted(get_peft_model_state_dict(model).items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:".encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def save_adapter(model: PreTrainedModel | PeftModel, directory: str | Path, base_model_dir: str | Path,
                 config: ConfigDict | Mapping[str, Any], *, base_adapter_dir: str | Path | None = None) -> str:
    """Write the peft adapter plus :data:`ADAPTER_META_FILE` (base model, training settings, weight hash) into
    ``directory`` atomically; return the hash (the adapter's version). ``config``: the settings it was trained
    with (a config dataclass or a JSON-able mapping). ``base_adapter_dir``: the adapter (saved here too) that was
    merged into the base weights before this one was trained (a warm start); its folder and version are
    recorded, and the model is the base with that adapter merged, then this one."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise TypeError("save_adapter needs a peft model (full_finetune runs have no adapter)")
    settings = config.to_dict() if isinstance(config, ConfigDict) else dict(config)
    meta: dict[str, Any] = {"base_model_dir": str(Path(base_model_dir).resolve()), "config": settings}
    if base_adapter_dir is not None:
        meta.update(base_adapter_dir=str(Path(base_adapter_dir).resolve()),
                    base_adapter_sha256=read_adapter_version(base_adapter_dir))
    meta["adapter_sha256"] = version = adapter_hash(model)
    with staged_dir(directory) as staging:
        model.save_pretrained(str(staging))
        (staging / ADAPTER_META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return version


def read_adapter_version(adapter_dir: str | Path) -> str:
    """The weight hash :func:`save_adapter` recorded in ``adapter_dir``."""
    path = Path(adapter_dir) / ADAPTER_META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not an adapter folder written by save_adapter")
    return json.loads(path.read_text())["adapter_sha256"]


def base_version(base_model_dir: str | Path) -> str:
    """A short id of a base model folder's weights (its ``config.json`` and its weight files' names and sizes):
    the version its generations are cached under (as ``base-<id>``)."""
    folder = Path(base_model_dir)
    parts = [(folder / "config.json").read_text()] + sorted(
        f"{p.name}:{p.stat().st_size}" for p in folder.glob("*.safetensors"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load_generator_model(base_model_dir: str | Path, adapter_dir: str | Path | None = None, merge: bool = True,
                         torch_threads: int = 2) -> tuple[PreTrainedModel | PeftModel, PreTrainedTokenizerBase]:
    """``(model, tokenizer)`` for generation: the base model, plus the adapter in ``adapter_dir`` if
    given, merged into the base weights (``merge_and_unload``) unless ``merge=False``."""
    model: PreTrainedModel | PeftModel
    model, tokenizer = load_causal_lm(base_model_dir, torch_threads)
    if adapter_dir is None:
        return model, tokenizer
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} has no adapter_config.json: not a peft adapter folder")
    meta_file = adapter_dir / ADAPTER_META_FILE
    if meta_file.is_file() and json.loads(meta_file.read_text()).get("base_adapter_dir"):
        raise ValueError(f"{adapter_dir} was trained on a warm start merged into the base weights: load it with "
                         "training.query_lists.policy.load_policy, which merges that warm start first")
    model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer

"""The static type of a small causal LM as the slm code drives it: a transformers model or a peft wrapper of one."""
from __future__ import annotations

from typing import Any, Protocol


class CausalLM(Protocol):
    """A transformers causal LM, or a peft model wrapping one: called on token ids, and asked for attributes
    that its architecture decides at run time (``model``, ``get_base_model``, ``get_output_embeddings``).
    ``torch.nn.Module`` types such attributes ``Tensor | Module``; here they are ``Any``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __getattr__(self, name: str) -> Any: ...

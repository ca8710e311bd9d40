"""Lightning strategies for training past one process, shared by the CTR and PREC trainers.

``batch_size`` stays per process: ``devices * num_nodes`` processes step together on a global batch of
``world_size * batch_size`` rows and DDP averages their gradients.

Which strategy where:

* ``ddp_spawn`` (the one to use in a Dagster step or a notebook): the ranks are fresh interpreters that
  receive the module, trainer and data by pickle; on CPU they talk over gloo. Nothing global is re-run.
* ``ddp_fork``: the ranks are forks of the caller (no pickling), but a fork of a process that already runs
  OpenMP or other threads (Dagster's log capture, MLflow's) can deadlock; prefer ``ddp_spawn``.
* ``ddp``: Lightning re-executes ``sys.argv`` for every extra rank. Right for ``python train.py`` or
  ``torchrun``, wrong inside ``dagster asset materialize`` (it would start the Dagster command again).

Spawn-based strategies hand back only the final weights and ``trainer.callback_metrics`` to the calling
process; whatever else a caller needs (best-epoch weights, history) must travel in the module's state
(see ``training.ctr.lightning_module.CtrLightningModule.get_extra_state``) or on disk.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch.distributed as dist

STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork")


def check_strategy(strategy: str, devices: int, num_nodes: int) -> None:
    """Raise ``ValueError`` naming the field for an unknown strategy or an impossible process count."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; expected one of {STRATEGIES}")
    for name, value in (("devices", devices), ("num_nodes", num_nodes)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if strategy == "auto" and devices * num_nodes > 1:
        raise ValueError(f"devices={devices}, num_nodes={num_nodes} needs a ddp strategy (e.g. strategy='ddp_spawn')")


def check_in_process(strategy: str, where: str) -> None:
    """Refuse plain ``ddp`` where the command line is not a training script (e.g. a Dagster step)."""
    if strategy == "ddp":
        raise ValueError(f"{where}: strategy='ddp' re-executes the command line for every extra rank, which "
                         f"here would rerun the Dagster command; use 'ddp_spawn' (or 'ddp_fork')")


def trainer_kwargs(strategy: str, devices: int, num_nodes: int, accelerator: str,
                   sync_buffers_each_step: bool = True) -> dict[str, Any]:
    """``strategy``/``devices``/``num_nodes`` keyword arguments for ``lightning.Trainer``.

    DDP strategies get gloo on CPU. ``sync_buffers_each_step=False`` stops DDP from copying rank 0's
    buffers to every rank before each forward pass (they are still synced once at the start): right when
    the buffers are large frozen tables that every rank already holds (the CTR models' news/user vectors)."""
    check_strategy(strategy, devices, num_nodes)
    if strategy == "auto":
        return {"strategy": "auto", "devices": devices, "num_nodes": num_nodes}
    from lightning.pytorch.strategies import DDPStrategy

    start_methods: dict[str, Literal["popen", "spawn", "fork"]] = {"ddp": "popen", "ddp_spawn": "spawn",
                                                                   "ddp_fork": "fork"}
    start_method = start_methods[strategy]
    backend = "gloo" if accelerator == "cpu" else None
    return {"strategy": DDPStrategy(start_method=start_method, process_group_backend=backend,
                                    forward_sync_buffers=sync_buffers_each_step),
            "devices": devices, "num_nodes": num_nodes}


def rank_and_world_size(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) outside one; ``rank``/``world_size`` given
    explicitly (e.g. to cut a shard without a process group) take precedence."""
    group_rank, group_world = (dist.get_rank(), dist.get_world_size()) \
        if dist.is_available() and dist.is_initialized() else (0, 1)
    rank = group_rank if rank is None else rank
    world = group_world if world_size is None else world_size
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world size {world}")
    return rank, world


def gather_arrays(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Concatenate each array over all ranks (rank order); the arrays themselves outside a process group."""
    rank, world = rank_and_world_size()
    if world == 1:
        return arrays
    gathered: list[list[np.ndarray] | None] = [None] * world
    dist.all_gather_object(gathered, arrays)
    return [np.concatenate(parts) for parts in zip(*gathered)]

"""The Dagster executor that runs each run's steps, chosen by ``$NEWSFORGE_EXECUTOR`` (code stays as it is).

| value | executor | steps run | needs |
|---|---|---|---|
| ``multiprocess`` (default) | ``multi_or_in_process_executor`` (forkserver) | a process a step, in parallel | nothing |
| ``in_process`` | ``in_process_executor`` | one after another in the run's process | nothing |
| ``docker`` | ``dagster_docker.docker_executor`` | a container per step | ``pip install dagster-docker``, an image |
| ``k8s`` | ``dagster_k8s.k8s_job_executor`` | a Kubernetes Job per step | ``pip install dagster-k8s``, image, cluster |

Under ``multiprocess`` each step gets one CPU thread (``OMP_NUM_THREADS=1`` in the step processes' environment
unless it is set already): Dagster runs as many steps side by side as there are cores, and OpenMP pools that
oversubscribe the cores (torch, LightGBM, faiss) ran several times slower on 2 cores. A step whose config names a
thread count (``torch_threads``, ``threads`` > 0) uses that; 0 means the step's default.

Under ``multiprocess`` the step processes are forked from a forkserver that imported the code location once
(``start_method: forkserver`` preloading :data:`FORKSERVER_PRELOAD`, the default here; Dagster's own default,
``spawn``, re-imports torch, Lightning and every asset module in each step: about 10 s a step on 2 cores, some
5 min of the demo's 32 steps). A run config that names a ``start_method`` keeps it.

Each executor's own settings (``max_concurrent``, ``image``, ``env_vars``, ``job_namespace`` …) come from the
run config's ``execution: config:`` block or a Dagster deployment's ``run_launcher``; nothing else changes.
"""
from __future__ import annotations

import importlib
import os

from dagster import ExecutorDefinition, in_process_executor, multi_or_in_process_executor

from training.settings import EXECUTOR as EXECUTOR_VARIABLE
from training.settings import executor_name

#: name -> (module, attribute, pip package) for the executors that live in Dagster's integration libraries.
_LIBRARY_EXECUTORS = {
    "docker": ("dagster_docker", "docker_executor", "dagster-docker"),
    "k8s": ("dagster_k8s", "k8s_job_executor", "dagster-k8s"),
}
EXECUTOR_NAMES = ("multiprocess", "in_process", *_LIBRARY_EXECUTORS)


#: What the forkserver imports before it forks step processes: the code location, with torch and Lightning
#: (Dagster's multiprocess executor puts its own module ``dagster._core.executor.multiprocess`` first).
FORKSERVER_PRELOAD = ["orchestration.definitions"]


def _forkserver_by_default(config: dict) -> dict:
    """``multi_or_in_process_executor`` run config with ``start_method: forkserver`` preloading
    :data:`FORKSERVER_PRELOAD` where none is named (Dagster preloads only itself for asset jobs)."""
    steps = config.get("multiprocess")
    if steps is not None and not steps.get("start_method"):
        start = {"forkserver": {"preload_modules": list(FORKSERVER_PRELOAD)}}
        return {**config, "multiprocess": {**steps, "start_method": start}}
    return config


#: Dagster's multi-or-in-process executor, same config, forking its step processes from a forkserver.
forkserver_multiprocess_executor = multi_or_in_process_executor.configured(
    _forkserver_by_default, name="multi_or_in_process_executor",
    config_schema=multi_or_in_process_executor.config_schema.as_field())


def executor_named(name: str) -> ExecutorDefinition:
    """The executor called ``name`` (one of :data:`EXECUTOR_NAMES`); a clear error for anything else."""
    if name == "multiprocess":
        return forkserver_multiprocess_executor
    if name == "in_process":
        return in_process_executor
    if name not in _LIBRARY_EXECUTORS:
        raise ValueError(f"${EXECUTOR_VARIABLE}={name!r} is not an executor newsforge knows; "
                         f"use one of {', '.join(EXECUTOR_NAMES)}")
    module, attribute, package = _LIBRARY_EXECUTORS[name]
    try:
        return getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"${EXECUTOR_VARIABLE}={name} needs the {package!r} package: "
                           f"pip install {package} (same release line as dagster)") from exc


#: Op tags of the steps on a run's longest chains (query generator -> generated queries, the two-head student and
#: the CTR model -> recall candidates -> LightGBM features, the query-list policy -> student -> interest queries):
#: when several steps are ready, these start first, so
#: the chain does not wait behind leaf evaluations (the demo ran its last 3 min on one core before).
CRITICAL_PATH_TAGS = {"dagster/priority": "1"}

#: CPU threads of each step under the multiprocess executor (one step a core), unless OMP_NUM_THREADS is set.
STEP_THREADS_SIDE_BY_SIDE = "1"


def configured_executor() -> ExecutorDefinition:
    """The executor ``$NEWSFORGE_EXECUTOR`` names (``multiprocess`` when unset). For ``multiprocess``, the step
    processes (children of this one) inherit ``OMP_NUM_THREADS=1`` unless the variable is set."""
    name = executor_name()
    executor = executor_named(name)
    if name == "multiprocess":
        os.environ.setdefault("OMP_NUM_THREADS", STEP_THREADS_SIDE_BY_SIDE)
    return executor

"""$NEWSFORGE_EXECUTOR picks the executor of every job; unknown names and missing libraries are clear errors."""
import json
import os
import subprocess
import sys

import pytest
from dagster import in_process_executor
from project import REPO_ROOT

from orchestration.executors import (
    EXECUTOR_NAMES,
    _forkserver_by_default,
    configured_executor,
    executor_named,
    forkserver_multiprocess_executor,
)

_JOB_EXECUTORS = """
import json
from orchestration.definitions import defs
repo = defs.get_repository_def()
print(json.dumps(sorted({job.executor_def.name for job in repo.get_all_jobs()})))
"""


def test_default_is_multiprocess(monkeypatch):
    monkeypatch.delenv("NEWSFORGE_EXECUTOR", raising=False)
    assert configured_executor() is forkserver_multiprocess_executor
    monkeypatch.setenv("NEWSFORGE_EXECUTOR", "in_process")
    assert configured_executor() is in_process_executor


def test_step_processes_fork_from_a_forkserver_unless_the_run_config_says_otherwise():
    """The default start method is forkserver (the code location is imported once, not once a step); a run
    config's own start_method and the in_process choice are kept."""
    defaults = {"multiprocess": {"max_concurrent": None, "retries": {"enabled": {}}}}
    preload = {"forkserver": {"preload_modules": ["orchestration.definitions"]}}
    assert _forkserver_by_default(defaults)["multiprocess"] == {**defaults["multiprocess"], "start_method": preload}
    spawn = {"multiprocess": {"max_concurrent": 2, "start_method": {"spawn": {}}}}
    assert _forkserver_by_default(spawn) == spawn
    assert _forkserver_by_default({"in_process": {}}) == {"in_process": {}}
    assert forkserver_multiprocess_executor.name == "multi_or_in_process_executor"


def test_steps_side_by_side_get_one_thread_each(monkeypatch):
    """Under the multiprocess executor the step processes inherit OMP_NUM_THREADS=1 (torch, LightGBM and faiss
    read it), unless the user set it; in process, nothing is set."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("NEWSFORGE_EXECUTOR", "in_process")
    configured_executor()
    assert "OMP_NUM_THREADS" not in os.environ
    monkeypatch.delenv("NEWSFORGE_EXECUTOR")
    configured_executor()
    assert os.environ["OMP_NUM_THREADS"] == "1"
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    configured_executor()
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_unknown_executor_names_the_known_ones():
    with pytest.raises(ValueError) as err:
        executor_named("spark")
    assert "'spark'" in str(err.value) and all(name in str(err.value) for name in EXECUTOR_NAMES)


@pytest.mark.parametrize("name,package", [("docker", "dagster-docker"), ("k8s", "dagster-k8s")])
def test_library_executor_needs_its_package(name, package, monkeypatch):
    module = package.replace("-", "_")
    try:
        __import__(module)
    except ModuleNotFoundError:
        with pytest.raises(RuntimeError, match=f"pip install {package}"):
            executor_named(name)
    else:  # installed: the real executor definition
        assert executor_named(name).name


def test_every_job_of_the_code_location_uses_it():
    env = {**os.environ, "NEWSFORGE_EXECUTOR": "in_process"}
    out = subprocess.run([sys.executable, "-c", _JOB_EXECUTORS], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["in_process"]

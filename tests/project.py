"""A throwaway copy of this project (git + DVC) on tiny demo data, for end-to-end tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

TINY_PARAMS = """\
demo:
  seed: 7
  users: 200
  news: 300
  days: 3
  impressions_per_day: 120
data:
  raw_dir: data/demo
  max_bad_fraction: 0.0
"""


def project_env(root: Path, executor: str = "in_process") -> dict[str, str]:
    """The environment of a test project. Its Dagster runs execute their steps in one process by default
    (about 2.5x faster than a process per step on 2 cores); the slow demo run keeps the users' default,
    ``executor="multiprocess"``."""
    env = dict(os.environ)
    env.update({
        "NEWSFORGE_EXECUTOR": executor,
        "NEWSFORGE_ROOT": str(root),
        "NEWSFORGE_HOME": str(root / ".newsforge"),
        "NEWSFORGE_PREPARED_DIR": str(root / "data" / "prepared"),
        "DAGSTER_HOME": str(root / ".newsforge" / "dagster"),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
    })
    return env


def run(cmd: list[str], root: Path, check: bool = True, timeout: float = 600,
        executor: str = "in_process") -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=root, env=project_env(root, executor), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def make_project(root: Path, params: str = TINY_PARAMS) -> Path:
    """Copy the project's files (as git sees them) into ``root``, commit them and run ``dvc repro``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = REPO_ROOT / rel
        if rel.startswith(("tests/", "benchmarks/")) or not src.is_file() or rel == "dvc.lock":
            continue
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    shutil.rmtree(root / "data", ignore_errors=True)
    (root / "params.yaml").write_text(params)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "test project"], root)
    run(["dvc", "repro", "-q"], root)
    (root / ".newsforge" / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "orchestration" / "dagster.yaml", root / ".newsforge" / "dagster" / "dagster.yaml")
    return root


def mlflow_client(root: Path):
    """An MLflow client on the project's local store."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{root / '.newsforge' / 'mlflow' / 'mlflow.db'}")


def finished_runs(client, asset: str) -> list:
    """The finished MLflow runs of ``asset``, newest first."""
    exp = client.get_experiment_by_name(f"newsforge/{asset}")
    return client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"])

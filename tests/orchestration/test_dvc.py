"""Real DVC commands: the data version is dvc.lock's md5, survives push/pull, and moves with the data."""
import shutil

import yaml
from project import make_project, run

from orchestration.resources.dvc_data import DataVersionError, DvcData


def _dvc_data(root) -> DvcData:
    return DvcData(repo_root=str(root), prepared_dir=str(root / "data" / "prepared"))


def test_version_push_pull_and_change(tmp_path):
    root = make_project(tmp_path)
    data = _dvc_data(root)
    version = data.data_version()
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert any(o["md5"] == version + ".dir" for o in lock["stages"]["prepare"]["outs"])

    run(["dvc", "push", "-q"], root)  # to the local default remote in .dvc/config
    assert any((root / ".newsforge" / "dvc-remote").rglob("*"))
    shutil.rmtree(root / "data" / "prepared")
    shutil.rmtree(root / ".dvc" / "cache")
    try:
        data.data_version()
        raise AssertionError("a missing data folder must not pass verification")
    except DataVersionError as err:
        assert "dvc repro" in str(err)
    run(["dvc", "pull", "-q"], root)
    assert data.data_version() == version

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["demo"]["seed"] += 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    run(["dvc", "repro", "-q"], root)
    assert data.data_version() != version


def test_committed_lock_matches_the_code(tmp_path):
    """On a clean checkout (no data), ``dvc status`` may only miss the data itself: a stage whose code or
    params changed without ``dvc repro`` means the committed data version is not what the code produces."""
    import json
    import subprocess

    from project import REPO_ROOT

    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    for rel in files.split():
        if (REPO_ROOT / rel).is_file() and not rel.startswith(("tests/", "benchmarks/", "docs/")):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / rel, tmp_path / rel)
    outs = {out["path"] for stage in yaml.safe_load((REPO_ROOT / "dvc.lock").read_text())["stages"].values()
            for out in stage.get("outs", [])}
    run(["git", "init", "-q"], tmp_path)
    status = json.loads(run(["dvc", "status", "--json"], tmp_path).stdout or "{}")
    stale = {}
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):
                stale.setdefault(stage, []).append(change)
                continue
            deps = {p: s for p, s in change.get("changed deps", {}).items() if not (s == "deleted" and p in outs)}
            if deps:
                stale.setdefault(stage, []).append(deps)
            if "changed params" in change:
                stale.setdefault(stage, []).append(change["changed params"])
    assert not stale, f"dvc.lock is stale (run `dvc repro` and commit dvc.lock): {stale}"

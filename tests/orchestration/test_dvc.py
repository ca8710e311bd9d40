"""Real DVC commands: the data version is dvc.lock's md5, survives push/pull, and moves with the data."""
import shutil

import yaml

from orchestration.resources.dvc_data import DataVersionError, DvcData
from project import make_project, run


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

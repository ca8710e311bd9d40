"""The DVC-versioned prepared tables and their data version (the md5 DVC records in ``dvc.lock``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from dagster import ConfigurableResource

from training.data.prepare import REPORT_FILE
from training.settings import prepared_dir, project_root


class DataVersionError(RuntimeError):
    """The prepared data is missing or differs from what ``dvc.lock`` records."""


class DvcData(ConfigurableResource):
    """Prepared MIND tables produced by the ``prepare`` stage of ``dvc.yaml``."""

    repo_root: str = str(project_root())
    prepared_dir: str = str(prepared_dir())
    stage: str = "prepare"
    verify: bool = True  # run `dvc status` to check the working copy matches dvc.lock

    @property
    def prepared_path(self) -> Path:
        return Path(self.prepared_dir)

    def data_version(self, verify: bool | None = None) -> str:
        """The md5 of the prepared folder recorded in ``dvc.lock``, checked against the files when verifying.

        Data assets verify (``dvc status``); downstream assets read the version their inputs were made from.
        """
        lock_path = Path(self.repo_root) / "dvc.lock"
        if not lock_path.is_file():
            raise DataVersionError(f"{lock_path} not found: run `dvc repro {self.stage}` (or `make data`) first")
        lock = yaml.safe_load(lock_path.read_text())
        stage = lock.get("stages", {}).get(self.stage)
        if stage is None:
            raise DataVersionError(f"{lock_path} has no stage '{self.stage}': run `dvc repro {self.stage}`")
        target = self.prepared_path.resolve()
        for out in stage.get("outs", []):
            if (Path(self.repo_root) / out["path"]).resolve() == target:
                if self.verify if verify is None else verify:
                    self._check_status()
                return out["md5"].removesuffix(".dir")
        raise DataVersionError(f"stage '{self.stage}' in {lock_path} does not output {self.prepared_path}")

    def _check_status(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "status", "--json", self.stage], cwd=self.repo_root, capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise DataVersionError(f"`dvc status {self.stage}` failed: {proc.stderr.strip()}")
        changes = json.loads(proc.stdout or "{}")
        if changes:
            raise DataVersionError(
                f"{self.prepared_path} or its inputs differ from dvc.lock ({json.dumps(changes)}); "
                f"run `dvc repro {self.stage}` (or `dvc pull`) so the data version is honest"
            )

    def prepare_report(self) -> dict:
        return json.loads((self.prepared_path / REPORT_FILE).read_text())

    def raw_path(self) -> Path:
        """The raw MIND folder the prepared tables were made from (``data.raw_dir`` of params.yaml)."""
        raw = Path(self.prepare_report()["raw_dir"])
        return raw if raw.is_absolute() else Path(self.repo_root) / raw

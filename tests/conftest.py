"""Shared fixtures. Tests never reach a model hub; the real sample rows in ../shared are optional."""
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real MIND / Adressa sample rows beside the checkout; skips when absent (users' machines)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="module")
def _mlflow_uris_restored():
    """``mlflow.set_tracking_uri``/``set_registry_uri`` also export ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI``,
    which every later subprocess (``newsforge predict``, ``dagster``) would inherit: put both variables and
    MLflow's in-process URIs back as they were once a test module is done."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = ({name: os.environ.get(name) for name in names}, tracking_utils._tracking_uri, registry_utils._registry_uri)
    yield
    for name, value in saved[0].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    tracking_utils._tracking_uri, registry_utils._registry_uri = saved[1], saved[2]

"""Fixtures: small EB-NeRD and Adressa inputs built in tmp_path."""
import pytest
from importer_fixtures import build_adressa_events, build_ebnerd


@pytest.fixture
def ebnerd_dir(tmp_path):
    return build_ebnerd(tmp_path / "ebnerd")


@pytest.fixture
def adressa_events_dir(tmp_path):
    return build_adressa_events(tmp_path / "adressa")

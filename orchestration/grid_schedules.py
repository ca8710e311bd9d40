"""The two schedules of the comparison grids. The grid assets' config defaults are the demo's (one seed and
short schedules where a grid would be slow); ``reproduce.yaml`` beside this module is the run config of the
full grids (``make reproduce``, ``reproduce_job``). :func:`schedule_note` says which one produced a table,
:func:`is_full_grid` whether it was the full one."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from dagster import Config

REPRODUCE_FILE = Path(__file__).with_name("reproduce.yaml")


@cache
def reproduce_run_config() -> dict:
    """The full grids' run config (``ops: {asset: {config: {...}}}``)."""
    return yaml.safe_load(REPRODUCE_FILE.read_text())


def _settings(values: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def _as_given(full: object, ran: object) -> object:
    """``ran`` cut to the keys ``full`` names, recursively (a nested config block names only what it changes)."""
    if isinstance(full, dict) and isinstance(ran, dict):
        return {key: _as_given(full[key], ran.get(key)) for key in full}
    return ran


def _grid(asset: str, config: Config) -> tuple[dict, dict]:
    """(the settings ``reproduce.yaml`` names for ``asset``, the values ``config`` ran with for them)."""
    full = reproduce_run_config()["ops"][asset]["config"]
    ran = config.model_dump()
    unknown = set(full) - set(ran)
    if unknown:
        raise KeyError(f"{REPRODUCE_FILE.name}: {asset} has no config field {sorted(unknown)}")
    return full, {key: _as_given(full[key], ran[key]) for key in full}


def is_full_grid(asset: str, config: Config) -> bool:
    """Whether ``config`` runs ``asset`` on the full grid of ``reproduce.yaml`` (else the demo's schedule)."""
    full, used = _grid(asset, config)
    return used == full


def schedule_note(asset: str, config: Config) -> str:
    """One Markdown line for beside ``asset``'s table: the grid settings it ran with, and whether they are
    the full grid of ``reproduce.yaml`` or the demo's shorter one (then what ``make reproduce`` runs)."""
    full, used = _grid(asset, config)
    if used == full:
        return f"_Full grid (`make reproduce`): {_settings(used)}._"
    return f"_Demo schedule: {_settings(used)}; `make reproduce` runs {_settings(full)}._"

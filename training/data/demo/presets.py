"""Size presets of the demo generator, read from the ``demo:`` section of ``params.yaml``.

The section names a preset and lists the presets; any other key overrides the preset's value::

    demo:
      preset: mind-small                 # the one line a user changes
      seed: 7                            # optional: overrides the preset's seed
      presets:
        demo: {seed: 42, users: 5000, news: 4000, days: 7, impressions_per_day: 2500}
        mind-small: {seed: 42, users: 50000, news: 51282, days: 7, impressions_per_day: 22424}

A section without ``preset`` is read as plain values (``demo: {seed: 42, users: 5000, ...}``).
Keys are the CLI's names (``users``, ``news``, ``days``, ``impressions_per_day``, ``seed``,
``start_day``), any other :class:`DemoConfig` field (e.g. ``median_candidates``), or ``realism: true``: the
realism features at their intended values (``training.data.demo.config.REALISM_ON``, docs/demo_data.md); a
field given beside it wins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from training.data.demo.config import REALISM_ON, DemoConfig

#: CLI/params names that differ from the DemoConfig field they set.
FIELD_NAMES = {"users": "n_users", "news": "n_news", "days": "n_days"}
SECTION = "demo"
#: The key that switches every realism feature to ``REALISM_ON``.
REALISM_KEY = "realism"


def config_values(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Rename params/CLI keys to DemoConfig fields (``realism: true`` -> ``REALISM_ON``, a field beside it wins);
    an unknown key is an error naming ``source``."""
    values = dict(values)
    realism = values.pop(REALISM_KEY, False)
    if not isinstance(realism, bool):
        raise ValueError(f"{source}: {REALISM_KEY} must be true or false, got {realism!r}")
    renamed = {**(REALISM_ON if realism else {}), **{FIELD_NAMES.get(k, k): v for k, v in values.items()}}
    known = set(DemoConfig.__dataclass_fields__)
    unknown = sorted(k for k in values if FIELD_NAMES.get(k, k) not in known)
    if unknown:
        raise ValueError(f"{source}: unknown demo setting(s) {unknown}; known: "
                         f"{sorted(set(FIELD_NAMES) | {REALISM_KEY} | known - set(FIELD_NAMES.values()))}")
    return renamed


def read_section(params_file: str | Path) -> dict[str, Any]:
    """The ``demo:`` mapping of a params file."""
    path = Path(params_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such params file "
                                f"(the demo presets are read from its '{SECTION}:' section)")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    section = doc.get(SECTION) if isinstance(doc, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{path}: no '{SECTION}:' mapping (expected '{SECTION}: {{preset: NAME, presets: {{...}}}}')")  # noqa: TRY004 (the CLI reports ValueErrors)
    return section


def resolve(section: dict[str, Any], source: str, preset: str | None = None,
            overrides: dict[str, Any] | None = None) -> DemoConfig:
    """The DemoConfig of a ``demo:`` section: its preset (or ``preset``), then its own keys, then ``overrides``.

    ``overrides`` use the CLI's names (``users`` ...); ``None`` values are ignored.
    """
    section = dict(section)
    presets = section.pop("presets", {}) or {}
    name = preset or section.pop("preset", None)
    section.pop("preset", None)
    values: dict[str, Any] = {}
    if name is not None:
        if not isinstance(presets, dict) or name not in presets:
            known = sorted(presets) if isinstance(presets, dict) else []
            raise ValueError(f"{source}: unknown demo preset {name!r}; known presets: {', '.join(known) or '(none)'}")
        values.update(config_values(presets[name] or {}, f"{source}: {SECTION}.presets.{name}"))
    values.update(config_values(section, f"{source}: {SECTION}"))
    values.update(config_values({k: v for k, v in (overrides or {}).items() if v is not None}, "command line"))
    return DemoConfig(**values)


def preset_config(params_file: str | Path, preset: str | None = None,
                  overrides: dict[str, Any] | None = None) -> DemoConfig:
    """:func:`resolve` on the ``demo:`` section of ``params_file``."""
    return resolve(read_section(params_file), str(params_file), preset, overrides)

"""``ConfigDict``: the dict / JSON round trip shared by the frozen config dataclasses of ``training``."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

_C = TypeVar("_C", bound="ConfigDict")


class ConfigDict:
    """``from_dict`` / ``to_dict`` / JSON helpers shared by the config dataclasses."""

    if TYPE_CHECKING:  # every subclass is a dataclass: what the ``dataclasses`` functions look for
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def from_dict(cls: type[_C], values: dict[str, Any] | None = None) -> _C:
        """Build from a plain dict; unknown keys raise ``ValueError``, lists become tuples."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}; known keys: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self: _C, **changes: Any) -> _C:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls: type[_C], path: str | Path) -> _C:
        return cls.from_dict(json.loads(Path(path).read_text()))

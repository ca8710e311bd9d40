"""Dagster run configs derived from the training dataclasses they drive, so a knob and its default are
written once: in ``training/``.

``@derived_from(CtrConfig, overrides=..., exclude=...)`` on a ``Config`` class adds every field of the
training dataclass(es) with the same name, type (tuples become lists, nested dataclasses nested configs)
and default; the class body holds only the asset's own knobs. An asset whose default differs from the
training one says so in ``overrides`` (``Override(value, reason)``, the reason shown in the Dagster UI);
``exclude`` names the training fields the asset sets itself, each with why. ``to_training(config)`` builds
the training dataclass back from the run config.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from dagster import Config
from pydantic import Field, create_model


class Override(NamedTuple):
    """An asset's own default for a training field, and why it differs from the training dataclass's."""

    value: Any
    reason: str


@dataclasses.dataclass(frozen=True)
class Derivation:
    """What a derived run config was built from (``derivation(config_class)``)."""

    sources: tuple[type, ...]
    overrides: Mapping[str, Override]
    exclude: Mapping[str, str]             # training field -> why the asset sets it itself

    def source_of(self, name: str) -> type | None:
        """The training dataclass that has field ``name`` (None: an asset-only field)."""
        return next((s for s in self.sources if name in _field_names(s)), None)

    def training_fields(self, source: type) -> list[str]:
        """The fields of ``source`` the run config holds (all but the excluded ones)."""
        return [name for name in _field_names(source) if name not in self.exclude]


_DERIVATIONS: dict[type, Derivation] = {}


def derivation(config_class: type) -> Derivation | None:
    """The derivation of ``config_class`` or of the derived config it inherits from; None if it has none."""
    return next((_DERIVATIONS[k] for k in config_class.__mro__ if k in _DERIVATIONS), None)


def derived_from(*sources: type, overrides: Mapping[str, Override] | None = None,
                 exclude: Mapping[str, str] | None = None) -> Callable[[type[Config]], type[Config]]:
    """Class decorator: the decorated ``Config`` class with every field of ``sources`` (training dataclasses)
    added, defaults from the dataclasses unless overridden. Without ``sources`` the class inherits those of
    the derived config it subclasses; its ``overrides`` and ``exclude`` then add to (or replace) the parent's,
    and an override back to the training default drops the parent's. Mistakes raise ``ValueError`` naming them:
    an unknown field, an override without a reason or equal to the training default, an asset field that
    re-declares a training field."""

    def derive(cls: type[Config]) -> type[Config]:
        spec = _merge(cls, sources, dict(overrides or {}), dict(exclude or {}))
        fields = {}
        for source in spec.sources:
            hints = _hints(source)
            for f in dataclasses.fields(source):
                if f.name in spec.exclude:
                    continue
                override = spec.overrides.get(f.name)
                default = override.value if override else _default(f)
                fields[f.name] = (_config_type(hints[f.name]), Field(
                    default=_config_value(default), description=override.reason if override else None))
        derived = create_model(cls.__name__, __base__=cls, __module__=cls.__module__, __doc__=cls.__doc__,
                               __qualname__=cls.__qualname__, **fields)
        _DERIVATIONS[derived] = spec
        return derived

    return derive


def to_training(config: Config, source: type | None = None, /, **given: Any) -> Any:
    """The training dataclass ``source`` (default: the config's only one) from run config ``config``;
    ``given``: values of the fields the derivation excludes (the others are the dataclass defaults)."""
    spec = derivation(type(config))
    name = type(config).__name__
    if spec is None:
        raise TypeError(f"{name} is not derived from a training dataclass (orchestration.run_config.derived_from)")
    if source is None:
        if len(spec.sources) != 1:
            raise TypeError(f"{name} derives from {_names(spec.sources)}: name the one to build")
        source = spec.sources[0]
    if source not in spec.sources:
        raise TypeError(f"{name} derives from {_names(spec.sources)}, not {source.__name__}")
    excluded = sorted(set(spec.exclude) & set(_field_names(source)))
    held = set(spec.training_fields(source))
    wrong = sorted(set(given) - set(excluded))
    if wrong:
        where = "come from the run config" if set(wrong) <= held else f"are not fields of {source.__name__}"
        raise ValueError(f"{name}: {wrong} {where}; only the excluded fields are given ({excluded})")
    values = {n: getattr(config, n) for n in spec.training_fields(source)}
    return source(**_training_values(source, {**values, **given}))


# -- building ---------------------------------------------------------------------------------------------
def _merge(cls: type, sources: tuple[type, ...], overrides: dict[str, Override],
           exclude: dict[str, str]) -> Derivation:
    parent = derivation(cls)
    if parent is not None:
        if sources and tuple(sources) != parent.sources:
            raise ValueError(f"{cls.__name__}: its parent derives from {_names(parent.sources)}; "
                             f"a subclass cannot derive from {_names(sources)}")
        sources = parent.sources
    if not sources:
        raise ValueError(f"{cls.__name__}: name the training dataclass(es) to derive from")
    for source in sources:
        if not (isinstance(source, type) and dataclasses.is_dataclass(source)):
            raise ValueError(f"{cls.__name__}: {source!r} is not a dataclass")
    names = [n for s in sources for n in _field_names(s)]
    shared = sorted({n for n in names if names.count(n) > 1})
    if shared:
        raise ValueError(f"{cls.__name__}: {_names(sources)} share the field(s) {shared}")
    defaults = {f.name: _default(f) for s in sources for f in dataclasses.fields(s)}
    for kind, given in (("override", overrides), ("exclude", exclude)):
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"{cls.__name__}: {kind} {unknown} not a field of {_names(sources)}; "
                             f"fields: {sorted(defaults)}")
    for name, override in overrides.items():
        if not isinstance(override, Override):
            raise ValueError(f"{cls.__name__}: override {name} must be Override(value, reason), got {override!r}")
        if name in exclude:
            raise ValueError(f"{cls.__name__}: {name} is both overridden and excluded")
    for name, reason in [*((n, o.reason) for n, o in overrides.items()), *exclude.items()]:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{cls.__name__}: {name} needs a reason (why the asset differs from the training "
                             f"dataclass)")
    merged = dict(parent.overrides) if parent else {}
    for name, override in overrides.items():
        if _same(override.value, defaults[name]):
            if name not in merged:
                raise ValueError(f"{cls.__name__}: override {name}={override.value!r} is the training default; "
                                 f"drop it")
            del merged[name]   # back to the training default
        else:
            merged[name] = override
    redeclared = sorted(set(cls.__dict__.get("__annotations__", {})) & set(defaults))
    if redeclared:
        raise ValueError(f"{cls.__name__}: {redeclared} re-declare field(s) of {_names(sources)}; give an "
                         f"Override (value, reason) instead")
    return Derivation(tuple(sources), merged, {**(parent.exclude if parent else {}), **exclude})


def _field_names(source: type) -> list[str]:
    return [f.name for f in dataclasses.fields(source)]


def _names(sources: tuple[type, ...]) -> str:
    return " and ".join(s.__name__ for s in sources)


def _hints(source: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(source)
    except NameError as err:
        raise ValueError(f"{source.__name__}: field types cannot be resolved ({err})") from None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise ValueError(f"training field {f.name} has no default: a run config needs one")


def _same(a: Any, b: Any) -> bool:
    return _config_value(a) == _config_value(b)


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else None


def _config_type(tp: Any) -> Any:
    """The Dagster-config type of a training field type: variable tuples as lists, dataclasses as configs."""
    union = _union_args(tp)
    if union is not None:
        return typing.Union[tuple(_config_type(a) for a in union)]  # noqa: UP007 - built from a tuple
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise ValueError(f"{tp}: only variable-length tuples (tuple[X, ...]) have a run-config type")
        return list[_config_type(args[0])]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _nested(tp)
    return tp


def _config_value(value: Any) -> Any:
    """A training value as run config: tuples as lists, dataclass instances as their nested configs."""
    if isinstance(value, tuple):
        return [_config_value(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _nested(type(value))(**{f.name: _config_value(getattr(value, f.name))
                                       for f in dataclasses.fields(value)})
    return value


_NESTED: dict[type, type[Config]] = {}


def _nested(source: type) -> type[Config]:
    """The run config of a dataclass nested in a training dataclass (no overrides), one class per dataclass."""
    if source not in _NESTED:
        _NESTED[source] = derived_from(source)(create_model(source.__name__, __base__=Config, __module__=__name__))
    return _NESTED[source]


def _training_values(source: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Run-config values as ``source``'s field values: lists as tuples, nested configs as dataclasses."""
    hints = _hints(source)
    return {name: _training_value(hints[name], value) for name, value in values.items()}


def _training_value(tp: Any, value: Any) -> Any:
    if isinstance(value, Config):
        return to_training(value)
    if not isinstance(value, list | tuple):
        return value
    union = _union_args(tp)
    inner = next((a for a in union if a is not type(None)), tp) if union else tp
    args = typing.get_args(inner)
    items = [_training_value(args[0] if args else Any, v) for v in value]
    return tuple(items) if typing.get_origin(inner) is tuple else items

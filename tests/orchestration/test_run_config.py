"""Run configs derived from the training dataclasses (orchestration/run_config.py): every asset config of the
code location either derives from the dataclass it drives, with the same defaults but its stated overrides,
or is listed below as having none; and the builder's types, defaults, nesting and errors."""
import dataclasses
import inspect
from dataclasses import dataclass, field

import pytest
from dagster import Config, DagsterInvalidConfigError, asset, materialize

from orchestration.definitions import defs
from orchestration.run_config import Override, derivation, derived_from, to_training

#: Asset configs without a training dataclass behind them: their knobs are the asset's own, or arguments of
#: plain functions and classes (no dataclass to derive from).
NOT_DERIVED = {
    "ChampionAgeConfig": "the champion_age check's own knob (default from training.settings)",
    "DistillationSetConfig": "teacher_targets' arguments",
    "GeneratedQueriesConfig": "asset knobs around a nested GenerationSettings",
    "GoldenSetConfig": "the golden set's file, size and seed",
    "InterestQueriesConfig": "the day's user cap (generation as registered)",
    "InterestRankingConfig": "the ablation's users per day and seeds (the ranker's config as registered)",
    "JudgeEvaluationConfig": "asset knobs around nested judge configs",
    "LlmJudgeConfig": "LlmJudge's constructor arguments (a class, not a dataclass)",
    "OpenAIJudgeConfig": "OpenAIJudge's constructor arguments (a class, not a dataclass)",
    "PairLogsConfig": "build_pair_logs' arguments",
    "QualityLabelsConfig": "asset knobs around nested judge configs",
    "QueryGeneratorConfig": "asset knobs around nested LoraConfig and GenerationSettings",
    "QueryListEvaluationConfig": "the protocol's users, seeds, sampled lists and capacity arms",
    "QueryListPolicyConfig": "asset knobs around the nested SFT, GRPO, reward, list and generation configs",
    "QueryListStudentConfig": "asset knobs around the nested SFT and distillation configs",
    "QueryTargetsConfig": "click_refined_targets' arguments",
    "RankingEvaluationConfig": "asset knobs around a nested StudentConfig",
    "LtrFeaturesConfig": "ranking_feature_rows' arguments",
    "RankingStudentConfig": "asset knobs around a nested StudentConfig",
    "LtrTradeoffConfig": "the report's seeds and sample",
    "RecallCandidatesConfig": "the recall paths' arguments",
    "RecallEvaluationConfig": "the evaluation's cut-offs and comparison seeds",
}


def _nested(config_class: type[Config]) -> set[type[Config]]:
    found = {config_class}
    for f in config_class.model_fields.values():
        if isinstance(f.annotation, type) and issubclass(f.annotation, Config):
            found |= _nested(f.annotation)
    return found


def _code_location_configs() -> set[type[Config]]:
    """Every Config class an asset or asset check of the code location takes, nested ones included."""
    nodes = [a.op for a in defs.assets] + [c.node_def for c in defs.asset_checks]
    found: set[type[Config]] = set()
    for node in nodes:
        parameter = inspect.signature(node.compute_fn.decorated_fn).parameters.get("config")
        if parameter is not None:
            found |= _nested(parameter.annotation)
    return found


CONFIGS = sorted(_code_location_configs(), key=lambda c: c.__name__)
DERIVED = [c for c in CONFIGS if derivation(c) is not None]


def _as_run_config(value):
    return [_as_run_config(v) for v in value] if isinstance(value, tuple) else value


def _training_default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def test_every_asset_config_is_derived_or_has_no_training_dataclass():
    assert len(CONFIGS) > 25 and len(DERIVED) > 10   # the search found the code location's configs
    assert {c.__name__ for c in CONFIGS if derivation(c) is None} == set(NOT_DERIVED)


@pytest.mark.parametrize("config_class", DERIVED, ids=lambda c: c.__name__)
def test_training_fields_keep_the_training_default_unless_overridden(config_class):
    spec = derivation(config_class)
    for source in spec.sources:
        for f in dataclasses.fields(source):
            if f.name in spec.exclude:
                assert f.name not in config_class.model_fields, f"{config_class.__name__}.{f.name} is excluded"
                continue
            assert f.name in config_class.model_fields, f"{config_class.__name__} lacks {source.__name__}.{f.name}"
            default = config_class.model_fields[f.name].default
            if f.name in spec.overrides:
                assert spec.overrides[f.name].reason.strip()
                assert default == _as_run_config(spec.overrides[f.name].value), (
                    f"{config_class.__name__}.{f.name} = {default!r}, its override is {spec.overrides[f.name]}")
                assert default != _as_run_config(_training_default(f)), f"{f.name}: override = training default"
            else:
                assert default == _as_run_config(_training_default(f)), (
                    f"{config_class.__name__}.{f.name} = {default!r}, {source.__name__}'s default is "
                    f"{_training_default(f)!r}: derive it or state an Override with its reason")


@pytest.mark.parametrize("config_class", DERIVED, ids=lambda c: c.__name__)
def test_default_run_config_builds_the_training_dataclass_with_the_overrides(config_class):
    spec = derivation(config_class)
    for source in spec.sources:
        names = {f.name for f in dataclasses.fields(source)}
        changes = {name: o.value for name, o in spec.overrides.items() if name in names}
        assert to_training(config_class(), source) == dataclasses.replace(source(), **changes)


def test_the_ranker_asset_derives_from_the_one_ranker_config():
    from assets.ltr import RankerRunConfig
    from training.ltr.stages import RankerConfig

    assert derivation(RankerRunConfig).sources == (RankerConfig,)
    assert {c.__name__ for c in CONFIGS}.isdisjoint({"RankerConfig"})
    assert to_training(RankerRunConfig(threads=1, label_gain=[0.0, 2.0])) == RankerConfig(threads=1,
                                                                                          label_gain=(0.0, 2.0))


# -- the builder ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inner:
    width: int = 3
    names: tuple[str, ...] = ("a", "b")


@dataclass(frozen=True)
class Knobs:
    rate: float = 0.1
    epochs: int = 10
    label: str = "x"
    flag: bool = True
    cap: int | None = None
    gains: tuple[float, ...] = (0.0, 1.0)
    maybe: tuple[int, ...] | None = None
    inner: Inner = field(default_factory=Inner)
    seed: int = 0


@dataclass(frozen=True)
class Arch:
    depth: int = 2


@derived_from(Knobs, overrides={"epochs": Override(3, "short schedule")}, exclude={"seed": "the asset's seeds"})
class ToyConfig(Config):
    """A toy asset config."""

    seeds: list[int] = [1]   # asset-only


def test_fields_types_and_defaults_follow_the_dataclass():
    fields = ToyConfig.model_fields
    assert list(fields) == ["seeds", "rate", "epochs", "label", "flag", "cap", "gains", "maybe", "inner"]
    assert fields["rate"].annotation is float and fields["rate"].default == 0.1
    assert fields["gains"].annotation == list[float] and fields["gains"].default == [0.0, 1.0]
    assert fields["cap"].default is None and fields["maybe"].default is None
    assert fields["epochs"].default == 3 and fields["epochs"].description == "short schedule"
    assert fields["rate"].description is None
    assert "seed" not in fields and ToyConfig.__name__ == "ToyConfig" and ToyConfig.__doc__ == "A toy asset config."
    nested = fields["inner"].annotation
    assert issubclass(nested, Config) and nested.model_fields["names"].default == ["a", "b"]


def test_to_training_round_trips_lists_nesting_and_given_fields():
    config = ToyConfig(gains=[0.5, 2.0], maybe=[1, 2], inner={"width": 5, "names": ["c"]}, cap=7)
    assert to_training(config, seed=9) == Knobs(epochs=3, gains=(0.5, 2.0), maybe=(1, 2),
                                               inner=Inner(width=5, names=("c",)), cap=7, seed=9)
    assert to_training(ToyConfig()) == Knobs(epochs=3)
    with pytest.raises(ValueError, match=r"\['rate'\] come from the run config"):
        to_training(ToyConfig(), rate=0.2)
    with pytest.raises(ValueError, match=r"\['sed'\] are not fields of Knobs"):
        to_training(ToyConfig(), sed=1)


def test_a_derived_config_is_dagster_run_config():
    @asset
    def toy(config: ToyConfig) -> Knobs:
        return to_training(config, seed=1)

    result = materialize([toy], run_config={"ops": {"toy": {"config": {"epochs": 5, "inner": {"width": 4}}}}})
    assert result.output_for_node("toy") == Knobs(epochs=5, inner=Inner(width=4), seed=1)
    with pytest.raises(DagsterInvalidConfigError, match="seed"):   # excluded: not a run-config key
        materialize([toy], run_config={"ops": {"toy": {"config": {"seed": 3}}}})


def test_several_sources_and_subclasses():
    @derived_from(Knobs, Arch, overrides={"depth": Override(4, "deeper"), "epochs": Override(3, "short")})
    class Both(Config):
        pass

    @derived_from(overrides={"epochs": Override(10, "back to the default"), "rate": Override(0.5, "faster")})
    class Child(Both):
        extra: int = 1

    assert to_training(Both(), Arch) == Arch(depth=4) and to_training(Both(), Knobs) == Knobs(epochs=3)
    assert to_training(Child(), Knobs) == Knobs(rate=0.5) and isinstance(Child(), Both)
    assert set(derivation(Child).overrides) == {"depth", "rate"}
    with pytest.raises(TypeError, match="name the one to build"):
        to_training(Both())
    with pytest.raises(TypeError, match="not derived from a training dataclass"):
        to_training(Config())


@pytest.mark.parametrize(("kwargs", "body", "message"), [
    ({"overrides": {"epoch": Override(3, "typo")}}, {}, r"override \['epoch'\] not a field of Knobs"),
    ({"exclude": {"sead": "typo"}}, {}, r"exclude \['sead'\] not a field of Knobs"),
    ({"overrides": {"epochs": Override(10, "same")}}, {}, "epochs=10 is the training default"),
    ({"overrides": {"epochs": Override(3, " ")}}, {}, "epochs needs a reason"),
    ({"overrides": {"epochs": (3, "a tuple")}}, {}, r"must be Override\(value, reason\)"),
    ({}, {"__annotations__": {"epochs": int}, "epochs": 3}, r"\['epochs'\] re-declare"),
])
def test_mistakes_are_clear_errors(kwargs, body, message):
    with pytest.raises(ValueError, match=message):
        derived_from(Knobs, **kwargs)(type("Bad", (Config,), dict(body)))


def test_sources_must_be_distinct_dataclasses():
    @dataclass
    class Clash:
        rate: float = 0.2

    with pytest.raises(ValueError, match=r"share the field\(s\) \['rate'\]"):
        derived_from(Knobs, Clash)(type("Bad", (Config,), {}))
    with pytest.raises(ValueError, match="is not a dataclass"):
        derived_from(dict)(type("Bad", (Config,), {}))

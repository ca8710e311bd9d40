"""The champion gate, written once for every registered model.

A gated asset registers a new version (no alias yet), then:

1. :func:`decide` scores the new version and the current ``champion`` with the same ``score(version)``
   function on the gate slice (data that neither training nor early stopping saw), next to a floor (the
   popularity baseline on the same slice), and applies a :class:`Criterion`. The default,
   :class:`BeatsOnMetric`, passes when the metric is strictly above the floor's and strictly above the
   champion's (a tie is not a win); :class:`KeepsClicksGainsQuality` (the ranking student) must not lose
   quality and may lose clicks only within a tolerance; :class:`BeatsFloorByInterval` (the query-list models)
   asks the 95 % paired interval of candidate − floor to lie above 0. With no champion, the floor alone decides, so a
   first version that loses to popularity never becomes champion.
   The decision has one of three outcomes (:attr:`GateDecision.outcome`):

   * ``promoted``: the criterion passed; the new version becomes champion.
   * ``kept``: above the floor, but not better than the champion by the criterion's rule; the champion
     stays. An outcome, not an error: the check fails with severity WARN, so the step and the run succeed
     and downstream assets run (they read the ``champion`` alias themselves).
   * ``failed``: not above the floor; the champion (if any) stays and the check fails with severity
     ERROR, so a blocking check fails the step and nothing downstream of it runs.
2. :func:`gated_outputs` yields the asset's ``Output``, then the check result, and only then moves the
   aliases with :func:`promote`: ``candidate`` to the new version, ``champion`` too when it was promoted.
   The check's description is the decision's one-line reason, which starts with the outcome: e.g.
   ``kept the champion: candidate v3 auc 0.7012 vs champion v2 auc 0.7012, ...; rule: ...``.

Over a partition range (a single-run backfill) the asset decides and promotes day by day in date order,
so each day is gated against the champion the previous day left; the last day goes through
:func:`gated_outputs` with every day's decision, and its check is ERROR if any day failed, else WARN if any
day kept its champion, else passed. Each decision is logged in its MLflow run (``gate.*`` tags, among them
``gate.outcome``), which :func:`gate_history` reads back as the alias history.

A crash anywhere before :func:`promote` (scoring the candidate, scoring the champion, after registration)
leaves both aliases where they were. A champion that can no longer be loaded or scored is an error naming
the alias and ``force_promote``; with ``force_promote`` the candidate may replace it, floor still required.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue, Output

from training.metrics.mind import METRIC_KEYS, format_metrics_table
from training.registry import CANDIDATE, CHAMPION, alias_version, set_alias

#: Name of the blocking check every gated asset carries.
CHECK_NAME = "beats_champion"

#: The outcomes of a gate decision (see the module docstring).
PROMOTED, KEPT, FAILED = "promoted", "kept", "failed"


class ChampionUnusableError(RuntimeError):
    """The current champion cannot be loaded or scored; ``force_promote`` lets a candidate replace it."""


class GateConflictError(RuntimeError):
    """The champion alias moved while this gate was deciding (another run promoted a version)."""


@dataclass(frozen=True)
class BeatsOnMetric:
    """Pass iff ``metric`` is strictly above the floor's and strictly above the champion's (higher is better)."""

    metric: str = "auc"

    @property
    def compared(self) -> tuple[str, ...]:
        """The metrics the decision compares (shown in its summary line)."""
        return (self.metric,)

    def describe(self, floor_name: str) -> str:
        return (f"its {self.metric} on the gate slice is strictly above the {floor_name} floor and the current "
                f"champion's (a tie is not a win)")

    def clears_floor(self, candidate: Mapping[str, float], floor: Mapping[str, float]) -> bool:
        return candidate[self.metric] > floor[self.metric]

    def judge(self, candidate: Mapping[str, float], champion: Mapping[str, float] | None,
              floor: Mapping[str, float], floor_name: str) -> tuple[bool, str]:
        """(passed, verdict)."""
        if not self.clears_floor(candidate, floor):
            return False, f"not above the {floor_name} floor"
        if champion is not None and not candidate[self.metric] > champion[self.metric]:
            return False, "not above the champion (a tie is not a win)"
        return True, "champion moves to the new version"


@dataclass(frozen=True)
class KeepsClicksGainsQuality:
    """Pass iff ``quality_metric`` is strictly above the floor's and not below the champion's, and
    ``click_metric`` is at least the champion's minus ``click_tolerance`` (absolute, same 0-1 scale)."""

    quality_metric: str = "reco_dcg5"
    click_metric: str = "click_ndcg5"
    click_tolerance: float = 0.01

    @property
    def metric(self) -> str:
        return self.quality_metric

    @property
    def compared(self) -> tuple[str, ...]:
        """The metrics the decision compares (shown in its summary line)."""
        return self.quality_metric, self.click_metric

    def describe(self, floor_name: str) -> str:
        return (f"its {self.quality_metric} on the gate slice is strictly above the {floor_name} floor and not "
                f"below the champion's, and its {self.click_metric} is at most {self.click_tolerance} below the "
                f"champion's")

    def clears_floor(self, candidate: Mapping[str, float], floor: Mapping[str, float]) -> bool:
        return candidate[self.quality_metric] > floor[self.quality_metric]

    def judge(self, candidate: Mapping[str, float], champion: Mapping[str, float] | None,
              floor: Mapping[str, float], floor_name: str) -> tuple[bool, str]:
        """(passed, verdict)."""
        quality, clicks = candidate[self.quality_metric], candidate[self.click_metric]
        if not self.clears_floor(candidate, floor):
            return False, f"{self.quality_metric} not above the {floor_name} floor"
        if champion is not None and quality < champion[self.quality_metric]:
            return False, f"loses {self.quality_metric} to the champion"
        if champion is not None and clicks < champion[self.click_metric] - self.click_tolerance:
            return False, f"loses {self.click_metric} by more than {self.click_tolerance} to the champion"
        return True, "champion moves to the new version"


#: Suffixes of the candidate metrics that carry the paired interval against the floor (BeatsFloorByInterval).
VS_FLOOR_LOW, VS_FLOOR_HIGH = "_vs_floor_low", "_vs_floor_high"


@dataclass(frozen=True)
class BeatsFloorByInterval(BeatsOnMetric):
    """Pass iff the 95 % paired interval of ``metric`` (candidate − floor over the gate slice's units, its lower
    end given as the candidate's ``<metric>_vs_floor_low``) lies above 0, and ``metric`` is strictly above the
    champion's (a tie is not a win)."""

    metric: str = "recall_at_30"

    @property
    def low_key(self) -> str:
        """The candidate metric holding the interval's lower end."""
        return f"{self.metric}{VS_FLOOR_LOW}"

    @property
    def high_key(self) -> str:
        """The candidate metric holding the interval's upper end."""
        return f"{self.metric}{VS_FLOOR_HIGH}"

    def describe(self, floor_name: str) -> str:
        return (f"the 95 % paired interval of its {self.metric} minus the {floor_name}'s on the gate slice lies "
                f"above 0, and its {self.metric} is strictly above the current champion's (a tie is not a win)")

    def clears_floor(self, candidate: Mapping[str, float], floor: Mapping[str, float]) -> bool:
        if self.low_key not in candidate:
            raise KeyError(f"{type(self).__name__} needs the candidate metric {self.low_key!r} (the lower end of "
                           f"the paired interval against the floor); got {sorted(candidate)}")
        return candidate[self.low_key] > 0

    def judge(self, candidate: Mapping[str, float], champion: Mapping[str, float] | None,
              floor: Mapping[str, float], floor_name: str) -> tuple[bool, str]:
        """(passed, verdict); the verdict shows the interval."""
        above = self.clears_floor(candidate, floor)
        interval = (f"{self.metric} minus the {floor_name}'s: 95 % interval [{candidate[self.low_key]:+.4f}, "
                    f"{candidate.get(self.high_key, float('nan')):+.4f}]")
        if not above:
            return False, f"not above the {floor_name} floor ({interval}, not above 0)"
        passed, verdict = super().judge(candidate, champion, floor, floor_name)
        return passed, f"{interval}; {verdict}"


Criterion = BeatsOnMetric | KeepsClicksGainsQuality | BeatsFloorByInterval


def gate_check_spec(asset: str, criterion: Criterion = BeatsOnMetric(),
                    floor_name: str = "popularity_baseline", blocking: bool = True) -> AssetCheckSpec:
    """The ``beats_champion`` check of a gated asset. Blocking by default (nothing downstream runs when the
    candidate is below the floor); ``blocking=False`` where downstream reads the ``champion`` alias itself
    and must refresh either way."""
    return AssetCheckSpec(
        CHECK_NAME, asset=asset, blocking=blocking,
        description=f"The new version passes when {criterion.describe(floor_name)}; only then does alias "
                    f"'{CHAMPION}' move to it.")


@dataclass(frozen=True)
class GateDecision:
    """The outcome of :func:`decide`; nothing in the registry has moved yet."""

    name: str
    metric: str
    candidate_version: str
    candidate_metrics: Mapping[str, float]
    champion_version: str | None              # the champion when the decision was taken
    champion_metrics: Mapping[str, float] | None
    floor_name: str
    floor_metrics: Mapping[str, float]
    champion_error: str | None                # why the champion could not be scored (force_promote only)
    passed: bool
    reason: str                               # one line: the outcome, the metric values, the verdict, the rule
    above_floor: bool                         # the candidate clears the floor (the criterion's clears_floor)

    @property
    def outcome(self) -> str:
        """``promoted`` (passed), ``kept`` (above the floor, lost to the champion) or ``failed`` (not above
        the floor)."""
        return PROMOTED if self.passed else KEPT if self.above_floor else FAILED

    @property
    def new_champion(self) -> str | None:
        return self.candidate_version if self.passed else self.champion_version

    def metrics_table(self) -> str:
        rows = {f"candidate v{self.candidate_version}": self.candidate_metrics}
        if self.champion_metrics is not None:
            rows[f"champion v{self.champion_version}"] = self.champion_metrics
        rows[f"floor: {self.floor_name}"] = self.floor_metrics
        keys = tuple(METRIC_KEYS) + tuple(k for k in self.candidate_metrics if k not in METRIC_KEYS)
        shared = tuple(k for k in keys if all(isinstance(row.get(k), (int, float)) for row in rows.values())
                       and not k.startswith("n_"))
        return format_metrics_table(rows, shared or (self.metric,))

    def log_to_mlflow(self, **tags: object) -> None:
        """Log the decision in the active MLflow run: every candidate metric, ``floor_<metric>`` and
        ``champion_<metric>``, and the ``gate.*`` tags (plus ``tags``, each as ``gate.<key>``)."""
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in self.candidate_metrics.items()})
        mlflow.log_metrics({f"floor_{k}": float(v) for k, v in self.floor_metrics.items()})
        if self.champion_metrics:
            mlflow.log_metrics({f"champion_{k}": float(v) for k, v in self.champion_metrics.items()})
        mlflow.set_tags({"gate.passed": str(self.passed).lower(), "gate.outcome": self.outcome,
                         "gate.reason": self.reason,
                         "gate.candidate": self.candidate_version,
                         "gate.champion_before": self.champion_version or "",
                         "gate.champion_after": self.new_champion or "",
                         **{f"gate.{key}": value for key, value in tags.items()}})

    def check_result(self) -> AssetCheckResult:
        """The check result: passed when promoted; failed with severity WARN when kept (the step, the run and
        everything downstream go on); failed with severity ERROR when failed (a blocking check stops the step
        and everything downstream). The description is :attr:`reason`."""
        nan = float("nan")
        return AssetCheckResult(
            check_name=CHECK_NAME, passed=self.passed, severity=_severity(self.outcome),
            description=self.reason,
            metadata={
                "outcome": self.outcome,
                "metric": self.metric,
                "candidate_version": self.candidate_version,
                f"candidate_{self.metric}": float(self.candidate_metrics[self.metric]),
                "champion_version": self.champion_version or "",
                f"champion_{self.metric}": float(self.champion_metrics[self.metric]) if self.champion_metrics else nan,
                f"floor_{self.metric}": float(self.floor_metrics[self.metric]),
                "champion_error": self.champion_error or "",
                "champion_after": self.new_champion or "",
                "comparison": MetadataValue.md(self.metrics_table()),
            },
        )


def _severity(outcome: str) -> AssetCheckSeverity:
    """WARN for a kept champion (not an error), ERROR otherwise (only read when the check fails)."""
    return AssetCheckSeverity.WARN if outcome == KEPT else AssetCheckSeverity.ERROR


def decide(name: str, candidate_version: str, score: Callable[[str], Mapping[str, float]],
           floor: Mapping[str, float], *, criterion: Criterion = BeatsOnMetric(),
           floor_name: str = "popularity_baseline", force_promote: bool = False) -> GateDecision:
    """Score ``candidate_version`` and the current champion with ``score(version)`` and apply ``criterion``
    against them and ``floor``. Moves nothing; errors propagate."""
    champion = alias_version(name, CHAMPION)
    candidate = dict(score(candidate_version))
    champion_metrics, champion_error = None, None
    if champion is not None:
        try:
            champion_metrics = dict(score(champion))
        except Exception as err:  # noqa: BLE001 - any failure to load or score the champion
            if not force_promote:
                raise ChampionUnusableError(
                    f"{name}@{CHAMPION} (version {champion}) cannot be loaded or scored: {type(err).__name__}: "
                    f"{err}. Repair it, or set the asset's config force_promote: true to let version "
                    f"{candidate_version} replace it if it beats the {floor_name} floor") from err
            champion_error = f"{type(err).__name__}: {err}"
    metric = criterion.metric
    passed, verdict = criterion.judge(candidate, champion_metrics, floor, floor_name)
    above_floor = criterion.clears_floor(candidate, floor)
    outcome = PROMOTED if passed else KEPT if above_floor else FAILED

    def values(row: Mapping[str, float]) -> str:
        return " ".join(f"{k} {row[k]:.4f}" for k in criterion.compared)

    if champion_metrics is not None:
        against = f"champion v{champion} {values(champion_metrics)}"
    elif champion_error is not None:
        against = f"champion v{champion} unusable ({champion_error}; force_promote set)"
    else:
        against = "no champion yet"
    head = {PROMOTED: "promoted", KEPT: "kept the champion", FAILED: "failed"}[outcome]
    reason = (f"{head}: candidate v{candidate_version} {values(candidate)} vs {against}, {floor_name} floor "
              f"{metric} {floor[metric]:.4f}; {verdict}; rule: promoted when {criterion.describe(floor_name)}")
    return GateDecision(name=name, metric=metric, candidate_version=candidate_version, candidate_metrics=candidate,
                        champion_version=champion, champion_metrics=champion_metrics, floor_name=floor_name,
                        floor_metrics=dict(floor), champion_error=champion_error, passed=passed, reason=reason,
                        above_floor=above_floor)


def promote(decision: GateDecision) -> None:
    """Move ``candidate`` to the new version and, if the check passed, ``champion`` too. Refuses (and moves
    nothing) when the champion is no longer the one the decision compared against."""
    current = alias_version(decision.name, CHAMPION)
    if current != decision.champion_version:
        raise GateConflictError(
            f"{decision.name}@{CHAMPION} moved from {decision.champion_version} to {current} while version "
            f"{decision.candidate_version} was gated; materialise again to compare with the new champion")
    set_alias(decision.name, CANDIDATE, decision.candidate_version)
    if decision.passed:
        set_alias(decision.name, CHAMPION, decision.candidate_version)


@dataclass(frozen=True)
class GateRecord:
    """One logged gate decision (see :func:`gate_history`)."""

    day: str                    # the partition gated on ("" for unpartitioned models)
    candidate: str
    champion_before: str        # "" when there was no champion
    champion_after: str
    passed: bool
    reason: str
    mlflow_run_id: str
    outcome: str                # promoted | kept | failed ("" when logged before outcomes were recorded)


def gate_history(name: str, client=None) -> list[GateRecord]:
    """Every gate decision logged for ``name`` by a finished MLflow run, oldest first: the alias history of
    ``champion`` (the registry keeps only where aliases point now)."""
    from mlflow.tracking import MlflowClient

    from orchestration.lineage import EXPERIMENT_PREFIX

    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT_PREFIX + name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id],
                              "attributes.status = 'FINISHED' and tags.`gate.passed` != ''",
                              order_by=["attributes.start_time ASC"], max_results=10_000)
    return [GateRecord(r.data.tags.get("dagster.partition", ""), r.data.tags.get("gate.candidate", ""),
                       r.data.tags.get("gate.champion_before", ""), r.data.tags.get("gate.champion_after", ""),
                       r.data.tags["gate.passed"] == "true", r.data.tags.get("gate.reason", ""), r.info.run_id,
                       r.data.tags.get("gate.outcome", PROMOTED if r.data.tags["gate.passed"] == "true" else ""))
            for r in runs]


def backfill_table(decisions: Mapping[str, GateDecision]) -> str:
    """Markdown: one row per day of a backfill, in date order, with each day's gate decision."""
    lines = ["| day | candidate | metric | candidate | champion | floor | outcome | champion after |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for day, d in sorted(decisions.items()):
        champion = f"v{d.champion_version} {d.champion_metrics[d.metric]:.4f}" if d.champion_metrics else "none"
        lines.append(f"| {day} | v{d.candidate_version} | {d.metric} | {d.candidate_metrics[d.metric]:.4f} | "
                     f"{champion} | {d.floor_metrics[d.metric]:.4f} | {d.outcome} | "
                     f"{('v' + d.new_champion) if d.new_champion else 'none'} |")
    return "\n".join(lines)


def _range_check_result(last: GateDecision, decisions: Mapping[str, GateDecision]) -> AssetCheckResult:
    """The check of a backfill: its outcome is ``failed`` (ERROR) if any day failed, else ``kept`` (WARN) if
    any day kept its champion, else ``promoted`` (passed). The last day's metadata, plus the days of each
    outcome and the table of every day."""
    result = last.check_result()
    days = {outcome: [day for day, d in sorted(decisions.items()) if d.outcome == outcome]
            for outcome in (PROMOTED, KEPT, FAILED)}
    outcome = FAILED if days[FAILED] else KEPT if days[KEPT] else PROMOTED
    named = "; ".join(f"{o} on {', '.join(days[o])}" for o in (FAILED, KEPT, PROMOTED) if days[o])
    return AssetCheckResult(
        check_name=CHECK_NAME, passed=outcome == PROMOTED, severity=_severity(outcome),
        description=f"{outcome}: {len(decisions)} days gated in date order; {named}. Last day: {last.reason}",
        metadata={**result.metadata, "outcome": outcome, **{f"days_{o}": ", ".join(days[o]) for o in days},
                  "backfill": MetadataValue.md(backfill_table(decisions))},
    )


def gated_outputs(output: Output, decision: GateDecision,
                  by_day: Mapping[str, GateDecision] | None = None) -> Iterator[Output | AssetCheckResult]:
    """What a gated asset yields: its output, then the check result, then (after both are recorded) the
    alias moves of :func:`promote`.

    ``by_day``: over a partition range, every day's decision by day (``decision`` is the last day's; the
    earlier days were promoted in date order as they were decided). The check then covers every day."""
    yield output
    yield decision.check_result() if not by_day else _range_check_result(decision, by_day)
    promote(decision)

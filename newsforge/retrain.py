"""``newsforge retrain``: retrain a partition (or a range of them) and report what the gates decided.

The one command behind CI-triggered retraining (``.github/workflows/retrain.yml``), so a laptop and any CI
run the same thing:

1. optionally bring the data to what ``dvc.lock`` records (``--data pull`` from the DVC remote, or
   ``--data repro``), then check it with ``dvc status`` (a mismatch is an error naming the files);
2. materialise the selection through the documented Dagster command, ``dagster asset materialize
   --select ... --partition D`` (or ``--partition-range A...B``, a single-run backfill in date order);
3. read the run back from the Dagster instance and write a summary: every gate decision (from the
   ``beats_champion`` check evaluations), every materialised asset with its MLflow run, failures, the
   champion history and the partition's evaluation tables, as Markdown (``--summary``; the GitHub job
   summary by default in Actions) and as files under ``--out`` (``summary.md``, ``gates.json``,
   ``report.md``, ``report.html``).

Each gate decision has one of three outcomes (``orchestration/champion_gate.py``): ``promoted`` (the new
version is champion), ``kept`` (above the floor but not better than the champion: the champion stays, the
step succeeds, downstream runs) or ``failed`` (below the floor: the step fails, or for a non-blocking gate
is reported as failed here). Exit status:

* 0: the run succeeded and every gate promoted its candidate (or no gate ran);
* 3: the run succeeded and at least one gate kept its champion (none failed); a day without improvement,
  not an error (CI treats it as success: ``newsforge retrain ... || [ $? -eq 3 ]``);
* 1: any step failed, a gate whose candidate is below the floor included, or the run did not succeed;
* 2: bad arguments, or data that differs from ``dvc.lock``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from training.settings import newsforge_home, project_root

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class GateOutcome:
    asset: str
    outcome: str            # promoted | kept | failed
    passed: bool
    blocking: bool
    candidate_version: str
    champion_before: str
    champion_after: str
    metric: str
    candidate: float | None
    champion: float | None
    floor: float | None
    reason: str


@dataclass
class RetrainSummary:
    """What one retraining run did, read back from the Dagster instance."""

    dagster_run_id: str
    status: str                                              # SUCCESS | FAILURE | CANCELED ...
    partitions: list[str]
    materialised: dict[str, str] = field(default_factory=dict)  # asset -> MLflow run URL (or "")
    gates: list[GateOutcome] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)               # gated assets whose champion stayed (outcome kept)
    failed: dict[str, str] = field(default_factory=dict)        # failed steps and failed gates -> message
    skipped: list[str] = field(default_factory=list)            # steps that never ran (downstream of a failure)
    warnings: list[str] = field(default_factory=list)           # other checks that did not pass (e.g. champion_age)

    @property
    def exit_status(self) -> int:
        """0: succeeded, every gate promoted; 3: succeeded, some gate kept its champion; 1: failed."""
        if self.failed or self.status != "SUCCESS":
            return 1
        return 3 if self.kept else 0


def resolve_partition(partition: str) -> str:
    """``YYYY-MM-DD``, or ``latest``: the newest day of the prepared data."""
    if partition == "latest":
        from orchestration.resources.dvc_data import DvcData

        days = DvcData().prepare_report()["days"]
        return days[-1]
    if not _DAY.match(partition):
        raise ValueError(f"--partition {partition!r}: expected YYYY-MM-DD or 'latest'")
    return partition


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``$NEWSFORGE_HOME/dagster``) with newsforge's instance settings."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(newsforge_home() / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy2(project_root() / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    return home


def prepare_data(mode: str) -> str:
    """Bring the prepared data to ``dvc.lock`` (``pull`` | ``repro`` | ``present``) and return its version."""
    from orchestration.resources.dvc_data import DvcData

    root = project_root()
    commands = {"pull": [[sys.executable, "-m", "dvc", "pull"]],  # deps too: `dvc status` checks them
                "repro": [[sys.executable, "-m", "dvc", "repro"]], "present": []}[mode]
    for cmd in commands:
        print(f"$ {' '.join(cmd[2:])}", flush=True)
        proc = subprocess.run(cmd, cwd=root)
        if proc.returncode != 0:
            raise ValueError(f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}) in {root}")
    return DvcData().data_version(verify=True)


def materialise(select: str, partition: str | None, partition_range: str | None,
                configs: list[str]) -> str:
    """Run ``dagster asset materialize`` (output streamed to this console); the id of the run it made."""
    from dagster import DagsterInstance, RunsFilter

    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "orchestration.definitions",
           "--select", select]
    cmd += ["--partition", partition] if partition else ["--partition-range", partition_range]
    for config in configs:
        cmd += ["-c", config]
    print("$ " + " ".join(cmd[1:]), flush=True)
    started = datetime.now(UTC)
    proc = subprocess.run(cmd, cwd=project_root())  # a run's outcome is read back from the run itself
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(RunsFilter(created_after=started), limit=1)
    if not runs:  # e.g. a selection or config Dagster refused before starting a run
        raise ValueError(f"`dagster asset materialize` made no run (exit {proc.returncode}; its output is above) "
                         f"for --select {select!r}")
    return runs[0].run_id


def read_run(run_id: str) -> RetrainSummary:
    """The summary of a finished Dagster run: materialisations, gate check evaluations, failures."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        records = instance.all_logs(run_id)
    tags = run.tags
    partitions = ([tags["dagster/partition"]] if "dagster/partition" in tags else
                  [tags.get("dagster/asset_partition_range_start", ""),
                   tags.get("dagster/asset_partition_range_end", "")])
    summary = RetrainSummary(run_id, run.status.value, partitions)
    planned, started, failures, checks = set(), set(), {}, {}
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.step_materialization_data.materialization
            url = mat.metadata.get("mlflow_run")
            summary.materialised[mat.asset_key.to_user_string()] = getattr(url, "value", "") or ""
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            checks[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = evaluation
        elif kind == DagsterEventType.STEP_START:
            started.add(event.step_key)
        elif kind == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            failures[event.step_key] = error.message.strip() if error else "unknown error"
        elif kind == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned.add(event.step_key)
    for (asset, check), evaluation in sorted(checks.items()):
        if check != "beats_champion":
            if not evaluation.passed:
                summary.warnings.append(f"{asset} {check}: {evaluation.description or 'failed'}")
            continue
        meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        metric = str(meta.get("metric", ""))
        summary.gates.append(GateOutcome(
            asset, outcome_of(meta, evaluation.passed, evaluation.severity), evaluation.passed,
            bool(evaluation.blocking),
            str(meta.get("candidate_version", "")), str(meta.get("champion_version", "")),
            str(meta.get("champion_after", "")), metric, _number(meta.get(f"candidate_{metric}")),
            _number(meta.get(f"champion_{metric}")), _number(meta.get(f"floor_{metric}")),
            str(evaluation.description or "")))
    failed_gates = {g.asset: g for g in summary.gates if g.outcome == "failed"}
    summary.kept = [g.asset for g in summary.gates if g.outcome == "kept"]
    for step, message in failures.items():
        if step in failed_gates and "blocking asset check" in message:
            continue  # reported with the gate's own reason below
        summary.failed[step] = message.splitlines()[0][:500]
    for asset, gate in failed_gates.items():  # a non-blocking gate's failure does not fail its step
        summary.failed[asset] = gate.reason[:500]
    summary.skipped = sorted(planned - started)
    return summary


def outcome_of(metadata: dict, passed: bool, severity) -> str:
    """A ``beats_champion`` evaluation's outcome: its ``outcome`` metadata; for evaluations recorded before
    outcomes were, ``promoted`` when it passed, ``kept`` when it failed with severity WARN, else ``failed``."""
    if metadata.get("outcome"):
        return str(metadata["outcome"])
    from dagster import AssetCheckSeverity

    return "promoted" if passed else "kept" if severity == AssetCheckSeverity.WARN else "failed"


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def summary_markdown(summary: RetrainSummary, report: str, history: dict[str, list]) -> str:
    """The job summary: verdict, gates, materialisations, failures, champion history, evaluation tables."""
    days = " ... ".join(dict.fromkeys(summary.partitions))
    verdict = {0: "✅ succeeded", 3: f"✅ succeeded, champion kept ({', '.join(summary.kept)})",
               1: "❌ failed"}[summary.exit_status]
    lines = [f"# Retraining {days}: {verdict}", "",
             f"Dagster run `{summary.dagster_run_id}` ({summary.status}); {len(summary.materialised)} asset(s) "
             "materialised.", ""]
    if summary.gates:
        lines += ["## Champion gates", "",
                  "| model | outcome | candidate | metric | candidate | champion | floor | champion after |",
                  "|---|---|---|---|---:|---:|---:|---|"]
        for g in summary.gates:
            lines.append(f"| {g.asset} | {g.outcome} | v{g.candidate_version} | {g.metric} | "
                         f"{_fmt(g.candidate)} | "
                         f"{('v' + g.champion_before + ' ' + _fmt(g.champion)) if g.champion_before else 'none'} | "
                         f"{_fmt(g.floor)} | {('v' + g.champion_after) if g.champion_after else 'none'} |")
        lines += [""] + [f"- **{g.asset}**: {g.reason}" for g in summary.gates] + [""]
    if summary.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in summary.warnings] + [""]
    if summary.failed:
        lines += ["## Failed steps and gates", ""]
        lines += [f"- `{step}`: {msg}" for step, msg in summary.failed.items()] + [""]
    if summary.skipped:
        lines += ["## Not run (downstream of a failed step or a candidate below the floor)", "",
                  ", ".join(f"`{s}`" for s in summary.skipped), ""]
    if summary.materialised:
        lines += ["## Materialised", "", "| asset | MLflow run |", "|---|---|"]
        lines += [f"| {asset} | {url or '–'} |" for asset, url in sorted(summary.materialised.items())] + [""]
    for name, records in history.items():
        if not records:
            continue
        lines += [f"## {name}: champion history (every gate decision, oldest first)", "",
                  "| day | candidate | outcome | champion before | champion after |", "|---|---|---|---|---|"]
        lines += [f"| {r.day or '–'} | v{r.candidate or '?'} | {r.outcome or 'not promoted'} | "
                  f"{('v' + r.champion_before) if r.champion_before else 'none'} | "
                  f"{('v' + r.champion_after) if r.champion_after else 'none'} |" for r in records] + [""]
    if report:
        lines += ["## Evaluation", "", re.sub(r"^## ", "### ", report, flags=re.M), ""]
    return "\n".join(lines)


def retrain(partition: str | None, partition_range: str | None, select: str = "*", configs: list[str] | None = None,
            data: str = "present", out: Path | None = None, summary_path: Path | None = None) -> int:
    """Retrain and write the summary; the command's exit status (see the module docstring)."""
    from mlflow.tracking import MlflowClient

    from newsforge.report import partition_report, write_html_report
    from orchestration.champion_gate import gate_history
    from orchestration.freshness import GATED_MODELS
    from training.settings import default_tracking_uri

    if bool(partition) == bool(partition_range):
        raise ValueError("give exactly one of --partition and --partition-range")
    if partition:
        partition = resolve_partition(partition)
    else:
        start, _, end = partition_range.partition("...")
        if not (_DAY.match(start) and _DAY.match(end)) or start > end:
            raise ValueError(f"--partition-range {partition_range!r}: "
                             "expected START...END, both YYYY-MM-DD, START <= END")
    ensure_dagster_home()
    version = prepare_data(data)
    print(f"data version {version}", flush=True)
    run_id = materialise(select, partition, partition_range, list(configs or []))
    summary = read_run(run_id)
    client = MlflowClient(default_tracking_uri())
    history = {name: gate_history(name, client) for name in GATED_MODELS if name in summary.materialised}
    last_day = summary.partitions[-1]
    report = partition_report(last_day, tracking_uri=default_tracking_uri())
    markdown = summary_markdown(summary, report, history)
    out = out or newsforge_home() / "retrain" / f"{last_day}-{run_id[:8]}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    (out / "report.md").write_text(report, encoding="utf-8")
    (out / "gates.json").write_text(json.dumps({"dagster_run_id": run_id, "status": summary.status,
                                                "exit_status": summary.exit_status,
                                                "gates": [asdict(g) for g in summary.gates],
                                                "kept": summary.kept, "failed": summary.failed,
                                                "warnings": summary.warnings},
                                               indent=2), encoding="utf-8")
    write_html_report(last_day, out / "report.html", tracking_uri=default_tracking_uri())
    summary_path = summary_path or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY")
                                    else None)
    if summary_path is not None:
        with open(summary_path, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
    print("\n" + markdown)
    print(f"\nsummary, gate decisions and evaluation tables written to {out}")
    print({0: "exit 0: the run succeeded; every gate promoted its candidate (or none ran)",
           3: f"exit 3: the run succeeded; champion kept by {', '.join(summary.kept)} (no improvement, not an error)",
           1: "exit 1: the run failed (see Failed steps and gates)"}[summary.exit_status])
    return summary.exit_status

"""Wall time and peak memory of every asset of one partition at a generator size preset (issue 12).

    .venv/bin/python benchmarks/bench_scale.py [--preset mind-small] [--partition 2019-11-14] [--work DIR]
        [--skip-grids] [--config run.yaml] [--timeout-per-asset S]

Builds a standalone project in ``--work`` (default /tmp/newsforge-scale-PRESET: git + DVC with this
checkout's files, ``demo.preset`` set to ``--preset``), runs ``dvc repro`` (generate_demo, prepare), then
materialises the assets one by one in dependency order, each as its own
``dagster asset materialize -m orchestration.definitions --select ASSET [--partition D] [-c CFG]`` child
process. "wall s" is the child's whole life (Python start, code location load, run launch, step
subprocess, resources); "step s" is Dagster's own step duration from its log. Each row's peak RSS is the
largest sum of RSS over the child and all its descendants (Dagster's multiprocess executor runs the step in
a grandchild), polled every 0.5 s: shared pages count once per process, so it is an upper bound. The run
config (default ``benchmarks/scale/PRESET.yaml`` when it exists) is split per asset: each child gets only its
own ``ops:`` entry. A work folder built before for the same preset is reused (delete it to rebuild). Prints one
Markdown table, and again each row as it finishes.
"""
from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import psutil
import yaml
from project import REPO_ROOT, project_env

#: Assets that train or score a grid of models/seeds/variants; excluded from the target's total.
GRID_ASSETS = ("ctr_evaluation", "ranking_evaluation", "ltr_tradeoff", "recall_evaluation", "judge_evaluation")
TARGET_SECONDS = 60 * 60
TARGET_PEAK_GB = 8.0
POLL_SECONDS = 0.5
GB = 1024 ** 3
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def step_seconds(log_text: str, asset: str) -> float:
    """The step's own duration from Dagster's 'Finished execution of step "A" in 4m52s.' line (NaN if absent)."""
    found = re.search(rf'Finished execution of step "{re.escape(asset)}" in ([0-9hms.]+)\.', log_text)
    if not found:
        return float("nan")
    return sum(float(v) * UNIT_SECONDS[u] for v, u in re.findall(r"([0-9.]+)(ms|h|m|s)", found.group(1)))


def tree_rss(proc: psutil.Process) -> int:
    """RSS of ``proc`` plus all its descendants, bytes (processes that vanish mid-poll count 0)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def kill_tree(proc: psutil.Process) -> None:
    for p in [*proc.children(recursive=True), proc]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def measure(cmd: list[str], cwd: Path, env: dict, log: Path, timeout: float | None) -> tuple[str, float, float]:
    """Run ``cmd`` with output to ``log``; (status ok/failed/timeout, wall seconds, peak tree RSS in GB)."""
    t0 = time.perf_counter()
    peak = 0
    with log.open("w") as out:
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        status = None
        try:
            while child.poll() is None:
                try:
                    peak = max(peak, tree_rss(proc))
                except psutil.NoSuchProcess:
                    pass
                if timeout and time.perf_counter() - t0 > timeout:
                    kill_tree(proc)
                    child.wait()
                    status = "timeout"
                    break
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            kill_tree(proc)
            child.wait()
            raise
    wall = time.perf_counter() - t0
    status = status or ("ok" if child.returncode == 0 else f"failed ({child.returncode})")
    return status, wall, peak / GB


def build_project(work: Path, preset: str) -> None:
    """Copy this checkout's files (as git sees them, like tests/project.py's make_project) into ``work``
    with ``demo.preset: PRESET``, and commit them; ``dvc repro`` is run (and measured) by the caller."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = REPO_ROOT / rel
        if rel.startswith(("tests/", "benchmarks/", "data/")) or not src.is_file() or rel == "dvc.lock":
            continue
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    if preset not in params["demo"]["presets"]:
        raise SystemExit(f"unknown preset {preset!r}; "
                         f"params.yaml's demo.presets: {', '.join(params['demo']['presets'])}")
    params["demo"]["preset"] = preset
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env(work, executor="multiprocess")   # what users run: a process per step
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", f"scale benchmark: {preset}"]):
        subprocess.run(cmd, cwd=work, env=env, check=True)
    dagster_home = work / ".newsforge" / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(work / "orchestration" / "dagster.yaml", dagster_home / "dagster.yaml")


def asset_order() -> list[tuple[str, bool, set[str]]]:
    """(asset, partitioned, upstream assets) in dependency order, from the code location."""
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    rows = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        rows.append((key.to_user_string(), node.partitions_def is not None,
                     {k.to_user_string() for k in node.parent_keys}))
    return rows


def split_config(config: dict, asset: str) -> dict | None:
    """The run config for one asset: its ``ops:`` entry and every other top-level key; None when empty."""
    part = {k: v for k, v in config.items() if k != "ops"}
    if asset in (config.get("ops") or {}):
        part["ops"] = {asset: config["ops"][asset]}
    return part or None


Row = tuple[str, str, float, float, float]  # name, status, wall s, step s, peak GB


def print_table(rows: list[Row], header: str, complete: bool = False) -> None:
    """The Markdown table: per row, then totals against the targets (wall time of the child processes);
    a partial run's targets read 'incomplete' unless already missed."""
    print(header)
    print("| asset | status | wall s | step s | peak RSS GB |\n|---|---|---:|---:|---:|")
    for name, status, wall, step, peak in rows:
        print(f"| {name} | {status} | {wall:.0f} | {step:.0f} | {peak:.2f} |")
    assets = [r for r in rows if not r[0].startswith("(dvc)")]
    chain = [r for r in assets if r[0] not in GRID_ASSETS]
    grids = [r for r in assets if r[0] in GRID_ASSETS]

    def total(group: list[Row], col: int) -> float:
        return sum(r[col] for r in group if r[col] == r[col])  # NaN steps (dvc rows, failures) count 0

    chain_s = total(chain, 2)
    peak = max((r[4] for r in rows), default=0.0)
    def verdict(ok: bool) -> str:
        return "MISSED" if not ok else ("met" if complete else "incomplete")

    print(f"| **assets except the grids** ({len(chain)}) | {verdict(chain_s <= TARGET_SECONDS)} "
          f"(target <= {TARGET_SECONDS // 60} min) | **{chain_s:.0f}** ({chain_s / 60:.1f} min) | "
          f"{total(chain, 3):.0f} | |")
    print(f"| **grids** ({', '.join(r[0] for r in grids) or 'none run'}) | | {total(grids, 2):.0f} | "
          f"{total(grids, 3):.0f} | |")
    print(f"| **all assets** | | **{total(assets, 2):.0f}** ({total(assets, 2) / 60:.1f} min) | "
          f"{total(assets, 3):.0f} | |")
    print(f"| **peak** (all rows) | {verdict(peak <= TARGET_PEAK_GB)} (target <= {TARGET_PEAK_GB:g} GB) "
          f"| | | **{peak:.2f}** |")
    sys.stdout.flush()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored there)
        signal.signal(sig, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mind-small", help="a preset of params.yaml's demo.presets")
    parser.add_argument("--partition", default="2019-11-14")
    parser.add_argument("--work", type=Path, help="project folder (default /tmp/newsforge-scale-PRESET)")
    parser.add_argument("--skip-grids", action="store_true", help=f"skip {', '.join(GRID_ASSETS)}")
    parser.add_argument("--config", type=Path, help="run config (default benchmarks/scale/PRESET.yaml if it exists)")
    parser.add_argument("--timeout-per-asset", type=float, default=3600.0, help="seconds; 0: none")
    args = parser.parse_args()

    work = (args.work or Path(f"/tmp/newsforge-scale-{args.preset}")).resolve()
    if work.is_relative_to(REPO_ROOT):
        raise SystemExit(f"--work must lie outside the repository ({REPO_ROOT})")
    config_path = args.config or REPO_ROOT / "benchmarks" / "scale" / f"{args.preset}.yaml"
    if args.config and not args.config.is_file():
        raise SystemExit(f"{args.config}: no such run config")
    config = (yaml.safe_load(config_path.read_text()) or {}) if config_path.is_file() else {}
    print(f"preset {args.preset}, partition {args.partition}, work {work}, "
          f"run config {config_path if config else '(asset defaults)'}", flush=True)

    rows: list[Row] = []
    env = project_env(work, executor="multiprocess")   # what users run: a process per step
    logs = work / "bench_logs"
    marker = work / ".bench_scale_data"
    timeout = args.timeout_per_asset or None
    if not marker.is_file():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        build_project(work, args.preset)
        logs.mkdir()
        for stage in ("generate_demo", "prepare"):
            status, wall, peak = measure(["dvc", "repro", "-s", stage], work, env, logs / f"dvc_{stage}.log", timeout)
            rows.append((f"(dvc) {stage}", status, wall, float("nan"), peak))
            print(f"  {rows[-1]}", flush=True)
            if status != "ok":
                print_table(rows, f"\nstopped: dvc stage {stage} {status} (log: {logs / f'dvc_{stage}.log'})")
                return 1
        marker.write_text(args.preset)
    elif marker.read_text() != args.preset:
        raise SystemExit(f"{work} holds preset {marker.read_text()!r}; pass another --work or delete it")
    else:
        print(f"reusing the data in {work} (delete {marker} to regenerate)", flush=True)
        logs.mkdir(exist_ok=True)

    order = asset_order()
    skipped = set(GRID_ASSETS) if args.skip_grids else set()
    for name, partitioned, parents in order:
        if name in skipped:
            continue
        if parents & skipped:
            raise SystemExit(f"--skip-grids: {name} depends on skipped {sorted(parents & skipped)}")
        cmd = ["dagster", "asset", "materialize", "-m", "orchestration.definitions", "--select", name]
        if partitioned:
            cmd += ["--partition", args.partition]
        part = split_config(config, name)
        if part:
            cfg = logs / f"{name}.yaml"
            cfg.write_text(yaml.safe_dump(part, sort_keys=False))
            cmd += ["-c", str(cfg)]
        try:
            status, wall, peak = measure(cmd, work, env, logs / f"{name}.log", timeout)
        except KeyboardInterrupt:
            print_table(rows, f"\ninterrupted while materialising {name}: the rows above are complete")
            return 130
        rows.append((name, status, wall, step_seconds((logs / f"{name}.log").read_text(errors="replace"), name), peak))
        print(f"  {rows[-1]}", flush=True)
        if status != "ok":
            print_table(rows, f"\nstopped at {name}: {status} (log: {logs / f'{name}.log'})")
            return 1
    print_table(rows, f"\npreset {args.preset}, partition {args.partition}", complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

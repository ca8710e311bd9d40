"""Peak memory and wall time of ``ltr_features``' featurisation at mind-small's size (issue 21): the previous
all-at-once code (``git show REV:training/ranking/{count_features,rows}.py``: the package was
training/ranking then) against the batched code, each in
its own child process, one after the other.

    .venv/bin/python benchmarks/bench_ltr_features.py [--fraction 1.0] [--batch-impressions N]
        [--old-rev 3c64ba8] [--check]

Inputs (``builders.ltr.logged_inputs``, seeded): 51,282 news, 7 days x 22,424 x ``fraction`` impressions of
5-69 candidates (~37, as mind-small), so ~826k logged pairs a day; every news a trigger of 100 ``coclick`` and
100 ``embedding`` candidates, a tenth of a 100-long ``qprime`` list and a 30-long ``union`` (the candidate
store's shape at ``recall_candidates``' defaults: 11.8M rows); 128-dimensional news vectors. ``fraction``
scales the impressions only (the store and the related rows do not depend on it). Each child runs what the
asset does after loading its inputs: ``LogCounts.from_logs`` over the 7 days, ``logged_rows`` of the training
days (a 20,000-impression sample, as benchmarks/scale/mind-small.yaml), the validation day and the test day,
then ``related_rows`` of the union lists, and stacks them; the new code in batches of ``--batch-impressions``
(default: ``LtrFeaturesConfig``'s). The ranking student and the CTR model are numpy
stand-ins (their own memory and time are not measured here: the CTR model scores a part in one call either
way, the student gets a batch's pairs instead of a part's).

Memory: "inputs" is the child's RSS once the inputs are built; "peak" the largest RSS during featurisation
(polled every 20 ms); "peak - inputs" what the featurisation itself took; "max RSS" the child's whole-life
``ru_maxrss`` from ``os.wait4``. ``--check`` also asserts both children's rows are equal.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import yaml

ROOT = _paths.ROOT
MIND_SMALL = {"news": 51_282, "impressions_per_day": 22_424, "days": 7}
#: The commit whose training/ranking/{count_features,rows}.py featurise a part at once.
OLD_REV = "3c64ba8"
OLD_PACKAGE = "training.ranking"  # training.ltr's name at OLD_REV
OLD_MODULES = ("count_features", "rows")
RUN_CONFIG = ROOT / "benchmarks" / "scale" / "mind-small.yaml"
MB = 1024 ** 2


def install_old_modules(rev: str) -> None:
    """Make ``training.ltr.{count_features,rows}`` the files ``training/ranking/{...}.py`` of ``rev``, also under
    their old names, which they import each other by (the package's ``__init__``, which imports names the old
    files lack, is skipped)."""
    package = types.ModuleType(OLD_PACKAGE)
    package.__path__ = [str(ROOT / "training" / "ltr")]
    sys.modules[OLD_PACKAGE] = sys.modules["training.ltr"] = package
    for name in OLD_MODULES:
        path = f"{OLD_PACKAGE.replace('.', '/')}/{name}.py"
        source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                                text=True).stdout
        module = types.ModuleType(f"{OLD_PACKAGE}.{name}")
        module.__file__ = f"{rev}:{path}"
        sys.modules[module.__name__] = sys.modules[f"training.ltr.{name}"] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        setattr(package, name, module)


class PeakRss:
    """The largest RSS of this process while the ``with`` block runs, polled every ``every`` seconds."""

    def __init__(self, every: float = 0.02) -> None:
        import psutil

        self.process, self.every, self.peak = psutil.Process(), every, 0
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def child(args: argparse.Namespace) -> None:
    """Build the inputs, featurise them with the old or the new code, print one JSON line."""
    if args.child == "old":
        install_old_modules(args.old_rev)
    import numpy as np
    import pandas as pd
    import psutil
    from builders.ltr import logged_inputs

    from training.ltr.count_features import LogCounts
    from training.ltr.rows import logged_rows, related_rows
    from training.quality.evaluation import sample_impressions
    from training.retrieval.recall_paths import UNION_PATHS, RecallPath

    inputs = logged_inputs(n_news=MIND_SMALL["news"], days=MIND_SMALL["days"], candidates=(5, 69),
                           impressions_per_day=round(MIND_SMALL["impressions_per_day"] * args.fraction),
                           path_k=100, union_k=30, dim=128, seed=0)
    index = pd.Index(inputs.news_vectors.ids)

    def student(triggers, candidates):
        t, c = index.get_indexer(triggers), index.get_indexer(candidates)
        return np.sin(t + 0.5 * c).astype(np.float32), ((t * 7 + c) % 5).astype(np.float32)

    def ctr(pairs):
        return (pairs["impression_id"].to_numpy() % 7 / 7 + pairs["position"].to_numpy() / 100).astype(np.float32)

    train_impressions = yaml.safe_load(RUN_CONFIG.read_text())["ops"]["ltr_features"]["config"]["train_impressions"]
    days = sorted(inputs.pairs["day"].unique())
    valid_day, next_day = days[-2], (pd.Timestamp(days[-1]) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    gc.collect()
    base = psutil.Process().memory_info().rss
    start = time.perf_counter()
    with PeakRss() as peak:
        batch = {} if args.child == "old" else {"batch_size": args.batch_impressions}
        counts = LogCounts.from_logs(inputs.impressions, inputs.pairs)
        if args.child == "old":
            path_ranks = inputs.path_ranks[inputs.path_ranks["path"].isin(UNION_PATHS)]
        else:
            from training.ltr.count_features import PathRanks
            path_ranks = PathRanks(inputs.path_ranks)
        parts = np.where(inputs.pairs["part"] == "test", "test",
                         np.where(inputs.pairs["day"] == valid_day, "valid", "train"))
        frames, sizes = [], {}
        for part in ("train", "valid", "test"):
            chunk = inputs.pairs[parts == part].assign(part=part)
            if part == "train":
                chunk = sample_impressions(chunk, train_impressions, 0)
            frames.append(logged_rows(chunk, inputs.times, counts, inputs.news_vectors, path_ranks, student, ctr,
                                      0.5 if part == "train" else 0.0, 0, **batch))
            sizes[part] = len(chunk)
            del chunk
        union = inputs.path_ranks[inputs.path_ranks["path"] == RecallPath.UNION]
        frames.append(related_rows(union, counts, next_day, inputs.news_vectors, path_ranks, student,
                                   **batch).assign(part="related"))
        sizes["related"] = len(union)
        rows = pd.concat(frames, ignore_index=True)
        del frames
    seconds = time.perf_counter() - start
    if args.out:
        rows.to_parquet(args.out, index=False)
    print(json.dumps({"inputs_rss": base, "peak_rss": peak.peak, "seconds": seconds, "sizes": sizes,
                      "rows": len(rows), "output_bytes": int(rows.memory_usage(deep=False).sum())}))


def run_child(mode: str, args: argparse.Namespace, out: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--fraction", str(args.fraction),
               "--batch-impressions", str(args.batch_impressions), "--old-rev", args.old_rev]
    if out is not None:
        command += ["--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(command, stdout=stdout, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        stdout.seek(0)
        text = stdout.read()
    if status != 0:
        raise SystemExit(f"{mode} child failed (status {status}):\n{text}")
    result = json.loads(text.strip().splitlines()[-1])
    result["max_rss"] = usage.ru_maxrss * 1024  # kilobytes on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="share of mind-small's impressions per day")
    parser.add_argument("--batch-impressions", type=int, help="default: LtrFeaturesConfig's")
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--check", action="store_true", help="assert both children give equal rows")
    parser.add_argument("--child", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.batch_impressions is None:
        from assets.ltr import LtrFeaturesConfig

        args.batch_impressions = LtrFeaturesConfig().batch_impressions
    with tempfile.TemporaryDirectory(prefix="bench_ltr_features_") as tmp:
        outs = {mode: Path(tmp) / f"{mode}.parquet" if args.check else None for mode in ("old", "new")}
        results = {mode: run_child(mode, args, outs[mode]) for mode in ("old", "new")}
        sizes = results["old"]["sizes"]
        print(f"\nranking_features featurisation, fraction {args.fraction} of mind-small's impressions: "
              + ", ".join(f"{k} {v:,} pairs" for k, v in sizes.items())
              + f"; output {results['new']['output_bytes'] / MB:,.0f} MB ({results['new']['rows']:,} rows)\n")
        print("| code | wall s | inputs RSS MB | peak RSS MB | peak - inputs MB | max RSS MB |")
        print("|---|---:|---:|---:|---:|---:|")
        for mode, label in (("old", f"all at once ({args.old_rev})"),
                            ("new", f"batched ({args.batch_impressions} impressions)")):
            r = results[mode]
            print(f"| {label} | {r['seconds']:.1f} | {r['inputs_rss'] / MB:,.0f} | {r['peak_rss'] / MB:,.0f} | "
                  f"{(r['peak_rss'] - r['inputs_rss']) / MB:,.0f} | {r['max_rss'] / MB:,.0f} |")
        if args.check:
            import pandas as pd

            pd.testing.assert_frame_equal(pd.read_parquet(outs["new"]), pd.read_parquet(outs["old"]))
            print("\nrows equal (pandas.testing.assert_frame_equal)")


if __name__ == "__main__":
    main()

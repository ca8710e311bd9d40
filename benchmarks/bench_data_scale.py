"""``prepare`` at 1x, 4x and 16x MIND-small's impression count: wall time and peak memory of the out-of-core
(DuckDB) data layer, side by side with the previous in-memory pandas reader (``--compare-old``).

Generates MIND-format news.tsv + behaviors.tsv (seeded, numpy-drawn: 156,965 impressions x scale, ~37
candidates and ~32 history clicks each, 50,000 users x scale, 51,282 news, 6 days) into ``--work`` (not the
repository), then runs each prepare in a child process and reads its peak RSS from ``os.wait4`` (DuckDB's
memory is part of the child's RSS).

    .venv/bin/python benchmarks/bench_data_scale.py --scales 1 4 16 --compare-old 1 4 --work /tmp/nf-scale
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIND_SMALL = {"impressions": 156_965, "users": 50_000, "news": 51_282, "candidates": 37, "history": 32}
#: The commit whose training/data/{mind_reader,prepare}.py is the previous in-memory pandas reader.
OLD_REV = "c531406"
BLOCK = 20_000  # impressions generated and written at a time


def write_news(path: Path, n_news: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(1, n_news + 1):
            fh.write(f"N{i}\tnews\tnewsus\tHeadline number {i}\tAn abstract.\thttps://x/{i}\t[]\t[]\n")


def write_behaviors(path: Path, scale: int, seed: int = 0) -> None:
    """MIND-format behaviors.tsv at ``scale`` x MIND-small, drawn with numpy in blocks (bounded memory)."""
    rng = np.random.default_rng(seed)
    n_imps, n_users, n_news = MIND_SMALL["impressions"] * scale, MIND_SMALL["users"] * scale, MIND_SMALL["news"]
    cand0 = [f"N{i}-0" for i in range(n_news + 1)]
    cand1 = [f"N{i}-1" for i in range(n_news + 1)]
    hist = [f"N{i}" for i in range(n_news + 1)]
    start = np.datetime64("2019-11-09T00:00:00")
    with open(path, "w", encoding="utf-8") as fh:
        for lo in range(0, n_imps, BLOCK):
            n = min(BLOCK, n_imps - lo)
            n_cand = rng.poisson(MIND_SMALL["candidates"] - 2, n) + 2
            n_hist = np.where(rng.random(n) < 0.03, 0, rng.poisson(MIND_SMALL["history"], n))
            cand_ids = rng.integers(1, n_news + 1, int(n_cand.sum())).tolist()
            clicks = (rng.random(len(cand_ids)) < 0.04).tolist()
            hist_ids = rng.integers(1, n_news + 1, int(n_hist.sum())).tolist()
            users = rng.integers(1, n_users + 1, n).tolist()
            seconds = np.sort(rng.integers(0, 6 * 86_400, n))
            times = (start + seconds.astype("timedelta64[s]")).astype(object)
            lines, c, h = [], 0, 0
            for k in range(n):
                nc, nh, t = int(n_cand[k]), int(n_hist[k]), times[k]
                cands = " ".join([(cand1 if clicks[j] else cand0)[cand_ids[j]] for j in range(c, c + nc)])
                history = " ".join([hist[i] for i in hist_ids[h:h + nh]])
                c, h = c + nc, h + nh
                hour = t.hour % 12 or 12
                noon = "AM" if t.hour < 12 else "PM"
                when = f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {noon}"
                lines.append(f"{lo + k + 1}\tU{users[k]}\t{when}\t{history}\t{cands}\n")
            fh.write("".join(lines))


def make_raw(work: Path, scale: int) -> Path:
    raw = work / f"mind-{scale}x"
    if not (raw / "behaviors.tsv").is_file():
        raw.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        write_news(raw / "news.tsv", MIND_SMALL["news"])
        write_behaviors(raw / "behaviors.tsv.part", scale)
        (raw / "behaviors.tsv.part").rename(raw / "behaviors.tsv")
        print(f"generated {raw} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return raw


def old_reader_dir(work: Path, rev: str) -> Path:
    """The previous reader (``git show REV:...``) as importable modules ``old_mind_reader``/``old_prepare``."""
    target = work / f"old-reader-{rev}"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("mind_reader", "prepare"):
        text = subprocess.run(["git", "show", f"{rev}:training/data/{name}.py"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
        text = text.replace("from training.data.mind_reader import", "from old_mind_reader import")
        (target / f"old_{name}.py").write_text(text)
    return target


def run_child(code: str, extra_path: Path | None = None) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; (wall seconds, peak RSS in MB)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in (extra_path, ROOT) if p),
               OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child failed ({status}): {code}")
    return wall, usage.ru_maxrss / 1024  # Linux: kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--compare-old", type=int, nargs="*", default=[],
                        help="scales at which to also run the previous in-memory pandas reader")
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: a temp dir)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit (default: the engine's)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="newsforge-scale-"))
    rows = []
    for scale in args.scales:
        raw = make_raw(work, scale)
        out = work / f"prepared-{scale}x"
        code = (f"from training.data.prepare import prepare; import json; r = prepare({str(raw)!r}, {str(out)!r}, "
                f"memory_limit={args.memory_limit!r}, threads={args.threads!r}); "
                f"open({str(work / f'report-{scale}x.json')!r}, 'w').write(r.to_json())")
        wall, rss = run_child(code)
        import json
        report = json.loads((work / f"report-{scale}x.json").read_text())
        mb = (raw / "behaviors.tsv").stat().st_size / 1e6
        rows.append(("duckdb", scale, report["n_impressions"], report["n_candidates"], mb, wall, rss))
        if scale in args.compare_old:
            old = old_reader_dir(work, args.old_rev)
            code = (f"from old_prepare import prepare; prepare({str(raw)!r}, {str(work / f'old-prepared-{scale}x')!r})")
            wall, rss = run_child(code, old)
            rows.append(("pandas (old)", scale, report["n_impressions"], report["n_candidates"], mb, wall, rss))
    print(f"\n{'engine':<13}{'scale':>6}{'impressions':>13}{'cand. rows':>13}{'input MB':>10}{'wall s':>9}"
          f"{'peak RSS MB':>13}{'s / M cand.':>13}{'time ratio':>12}{'RSS ratio':>11}")
    base: dict[str, tuple[int, float, float]] = {}
    for engine, scale, n_imps, n_cand, mb, wall, rss in rows:
        first = base.setdefault(engine, (scale, wall, rss))
        ratio_t = f"{wall / first[1]:.2f}x" if scale != first[0] else "-"
        ratio_m = f"{rss / first[2]:.2f}x" if scale != first[0] else "-"
        print(f"{engine:<13}{scale:>5}x{n_imps:>13,}{n_cand:>13,}{mb:>10.0f}{wall:>9.1f}{rss:>13.0f}"
              f"{wall / n_cand * 1e6:>13.2f}{ratio_t:>12}{ratio_m:>11}")
    print(f"(ratios against the engine's smallest scale; data in {work})")


if __name__ == "__main__":
    main()

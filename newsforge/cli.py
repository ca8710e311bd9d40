"""``newsforge`` command line: generate/validate/prepare data, predict and score MIND submissions, print reports."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_generate(args: argparse.Namespace) -> int:
    from training.data.demo import generate_demo
    from training.data.demo.presets import preset_config, resolve

    overrides = {"seed": args.seed, "users": args.users, "news": args.news, "days": args.days,
                 "impressions_per_day": args.impressions_per_day, "start_day": args.start_day}
    if args.user_signals is not None:
        overrides["user_signals"] = args.user_signals
    if args.no_profiles:
        overrides["user_profiles"] = False
    if args.params or args.preset:
        config = preset_config(args.params or "params.yaml", args.preset, overrides)
    else:
        config = resolve({}, "command line", overrides=overrides)
    report = generate_demo(Path(args.out_dir), config)
    print(f"wrote demo data to {args.out_dir}: {report.counts}")
    for entry in report.days:
        print(f"  {entry['day']}: {entry['n_impressions']} impressions, ceiling AUC {entry['ceiling']['auc']:.4f}, "
              f"popularity-only AUC {entry['popularity_oracle']['auc']:.4f}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from training.data.prepare import validate_mind_dir

    checked = validate_mind_dir(args.dir, require_labels=not args.unlabelled)
    bad = 0
    for v in checked.validations:
        print(f"{v.file}: {v.n_rows} rows, {v.n_bad} bad")
        for issue in v.issues[: args.show]:
            print(f"  {issue}")
        if len(v.issues) > args.show:
            print(f"  ... and {len(v.issues) - args.show} more issue(s)")
        bad += v.n_bad
    m = checked.missing_news
    print(f"news ids missing from news.tsv: {m.distinct_candidate_ids} distinct in impressions "
          f"({m.candidate_fraction:.1%} of candidates), {m.distinct_history_ids} distinct in histories "
          f"({m.history_fraction:.1%} of history entries); they get ID-only features")
    return 1 if bad else 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from training.data.prepare import prepare

    report = prepare(args.raw_dir, args.out_dir, max_bad_fraction=args.max_bad_fraction,
                     memory_limit=args.memory_limit, threads=args.threads)
    print(report.to_json())
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from training.data.importers.report import REPORT_FILE

    if args.dataset == "ebnerd":
        from training.data.importers.ebnerd import EbnerdOptions, import_ebnerd

        splits = tuple(s.strip() for s in args.splits.split(",") if s.strip()) if args.splits else None
        report = import_ebnerd(args.dir, args.out, EbnerdOptions(splits=splits, time_zone=args.timezone))
    else:
        from training.data.importers.adressa import AdressaOptions, import_adressa

        report = import_adressa(args.dir, args.out, AdressaOptions(negatives=args.negatives, seed=args.seed,
                                                                   max_history=args.max_history))
    print(report.summary())
    print(f"full report: {Path(args.out) / REPORT_FILE}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from training.data.mind_reader import read_behaviors
    from training.metrics.mind import METRIC_KEYS, METRIC_LABELS
    from training.metrics.submission import read_prediction_file, score_prediction

    impressions, _, validation = read_behaviors(args.truth)
    if validation.n_bad:
        for issue in validation.issues[:20]:
            print(issue, file=sys.stderr)
        print(f"{args.truth}: {validation.n_bad} bad row(s); fix the truth file first", file=sys.stderr)
        return 2
    metrics = score_prediction(impressions, read_prediction_file(args.prediction))
    if args.json:
        print(json.dumps(metrics.as_dict()))
    else:
        d = metrics.as_dict()
        print("  ".join(f"{METRIC_LABELS[key]} {d[key]:.4f}" for key in METRIC_KEYS)
              + f"  ({d['n_impressions']} impressions, {d['n_auc_skipped']} without both classes skipped for AUC)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from newsforge.report import partition_report, write_html_report

    if args.html:
        print(f"wrote {write_html_report(args.partition, args.html, tracking_uri=args.tracking_uri)}")
        return 0
    print(partition_report(args.partition, tracking_uri=args.tracking_uri))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from newsforge.predict import predict_folder
    from training.registry import UnknownModelError

    try:
        n = predict_folder(args.model, args.data, args.out, tracking_uri=args.tracking_uri)
    except UnknownModelError as err:  # one line naming what was asked for and what the registry holds
        print(f"newsforge predict: {err}", file=sys.stderr)
        return 1
    print(f"wrote {n} impressions to {args.out}")
    return 0


def _cmd_candidates(args: argparse.Namespace) -> int:
    from training.retrieval.candidate_store import CandidateStore
    from training.retrieval.recall_paths import UNION_PATHS, RecallPath
    from training.settings import candidate_store_path

    served = [str(p) for p in (RecallPath.UNION, *UNION_PATHS)]
    args.path = args.path or served[0]
    if args.path not in served:
        print(f"newsforge candidates: --path must be one of {', '.join(served)}, got {args.path!r}", file=sys.stderr)
        return 2
    path = args.store or candidate_store_path()
    with CandidateStore(path, readonly=True) as store:
        version = args.version or store.current_version()
        if version is None:
            print(f"newsforge candidates: {path} holds no version yet: materialise recall_candidates", file=sys.stderr)
            return 1
        found = store.lookup(args.trigger, path=args.path, version=version)
        if not found:
            print(f"newsforge candidates: no {args.path} candidates for {args.trigger} in version {version} "
                  f"(paths: {', '.join(store.paths(version))})", file=sys.stderr)
            return 1
    print(f"# {args.path} candidates of {args.trigger} (store {path}, version {version})")
    for rank, (news_id, score) in enumerate(found[: args.k]):
        print(f"{rank + 1}\t{news_id}\t{score:.4f}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from serving.service.server import ServeOptions, ServeRefused, serve
    from training.settings import candidate_store_path, default_tracking_uri

    require = tuple(name.strip() for name in args.require.split(",") if name.strip())
    options = ServeOptions(tracking_uri=args.tracking_uri or default_tracking_uri(),
                           store=str(args.store or candidate_store_path()), host=args.host, port=args.port,
                           poll_seconds=args.poll_seconds, workers=args.workers, require=require)
    try:
        serve(options)
    except ServeRefused as err:  # one line: which champion is missing or broken, and where we looked
        print(f"newsforge serve: {err}", file=sys.stderr)
        return 2
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from newsforge.retrain import retrain
    from orchestration.resources.dvc_data import DataVersionError

    try:
        return retrain(args.partition, args.partition_range, select=args.select, configs=args.config,
                       data=args.data, out=args.out, summary_path=args.summary)
    except DataVersionError as err:  # the data differs from dvc.lock: names the files and the fix
        print(f"newsforge retrain: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate, validate and prepare MIND-format data").add_subparsers(
        dest="data_command", required=True)
    gen = data.add_parser("generate", help="write the synthetic demo dataset in MIND format")
    gen.add_argument("out_dir")
    gen.add_argument("--params", help="read sizes from this file's 'demo:' section (its preset, then its own keys)")
    gen.add_argument("--preset", help="a preset of the params file's demo.presets, e.g. demo or mind-small "
                     "(default: its demo.preset); the flags below override it")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--users", type=int)
    gen.add_argument("--news", type=int)
    gen.add_argument("--days", type=int)
    gen.add_argument("--impressions-per-day", type=int)
    gen.add_argument("--start-day", help="first day, YYYY-MM-DD (default 2019-11-09)")
    gen.add_argument("--no-profiles", action="store_true", help="do not write user_profiles.tsv")
    gen.add_argument("--user-signals", action=argparse.BooleanOptionalAction, default=None,
                     help="write user_signals.tsv (searches typed, topics followed; default: the preset's, else off)")
    gen.set_defaults(func=_cmd_generate)

    val = data.add_parser("validate", help="check a MIND folder (news.tsv, behaviors.tsv); exit 1 on bad rows")
    val.add_argument("dir")
    val.add_argument("--show", type=int, default=50, help="issues to print per file")
    val.add_argument("--unlabelled", action="store_true", help="accept candidates without labels (MIND test split)")
    val.set_defaults(func=_cmd_validate)

    prep = data.add_parser("prepare", help="validate a MIND folder and write the parquet tables")
    prep.add_argument("raw_dir")
    prep.add_argument("out_dir")
    prep.add_argument("--max-bad-fraction", type=float, default=0.0,
                      help="fail when a file's share of bad rows exceeds this (default 0: any bad row fails)")
    prep.add_argument("--memory-limit",
                      help="DuckDB memory limit, e.g. 2GB (default $NEWSFORGE_DUCKDB_MEMORY_LIMIT or 1GB)")
    prep.add_argument("--threads", type=int, help="DuckDB threads (default $NEWSFORGE_DUCKDB_THREADS or 2)")
    prep.set_defaults(func=_cmd_prepare)

    imp = data.add_parser(
        "import", help="convert another dataset (EB-NeRD, Adressa) into a MIND folder").add_subparsers(
        dest="dataset", required=True)
    eb = imp.add_parser("ebnerd", help="EB-NeRD: DIR/articles.parquet, DIR/<split>/{behaviors,history}.parquet")
    eb.add_argument("dir")
    eb.add_argument("out")
    eb.add_argument("--splits", help="comma-separated, e.g. train,validation (default: every split folder present)")
    eb.add_argument("--timezone", default="UTC",
                    help="IANA zone of EB-NeRD's naive timestamps, converted to UTC (default UTC: kept as they are)")
    eb.set_defaults(func=_cmd_import)
    ad = imp.add_parser("adressa", help="Adressa: raw event logs (JSON lines; negatives sampled) or a MIND news folder")
    ad.add_argument("dir")
    ad.add_argument("out")
    ad.add_argument("--negatives", type=int, default=4, help="negatives sampled per click (default 4)")
    ad.add_argument("--seed", type=int, default=0, help="seed of the negative sampling (default 0)")
    ad.add_argument("--max-history", type=int, default=50, help="latest earlier clicks kept as history (default 50)")
    ad.set_defaults(func=_cmd_import)

    score = sub.add_parser("score", help="score a MIND submission file against a behaviors.tsv with labels")
    score.add_argument("truth", help="behaviors.tsv with labelled candidates")
    score.add_argument("prediction", help="'ImpressionID [r1,r2,...]' per line, 1-based ranks in candidate order")
    score.add_argument("--json", action="store_true", help="print one JSON object")
    score.set_defaults(func=_cmd_score)

    predict = sub.add_parser("predict", help="score a MIND folder with a registered model (submission format)")
    predict.add_argument("--model", required=True, help="NAME@ALIAS or NAME@VERSION, e.g. ctr_model@champion")
    predict.add_argument("--data", required=True, help="folder with news.tsv and behaviors.tsv (labels optional)")
    predict.add_argument("--out", required=True, help="prediction file to write")
    predict.add_argument("--tracking-uri", help="default: the local store under $NEWSFORGE_HOME/mlflow")
    predict.set_defaults(func=_cmd_predict)

    report = sub.add_parser("report", help="print the evaluation table of a partition from MLflow")
    report.add_argument("--partition", required=True)
    report.add_argument("--tracking-uri", help="default: the local store under $NEWSFORGE_HOME/mlflow")
    report.add_argument("--html", type=Path, metavar="OUT.html",
                        help="write one self-contained page with every table and figure of the partition instead")
    report.set_defaults(func=_cmd_report)

    cands = sub.add_parser("candidates", help="look up a trigger's recall candidates in the key-value store")
    cands.add_argument("trigger", help="a news id, e.g. N123")
    # checked in the command against training.retrieval.recall_paths (importing it here would slow every command)
    cands.add_argument("--path", help="the list to show: the union (default) or one of the paths it merges")
    cands.add_argument("-k", type=int, default=30)
    cands.add_argument("--version", help="a store version (the recall_candidates MLflow run id); default: current")
    cands.add_argument("--store", help="default: $NEWSFORGE_HOME/serving/candidates.sqlite")
    cands.set_defaults(func=_cmd_candidates)

    serve = sub.add_parser("serve", help="answer /v1/rank and /v1/related online from the registry's champions")
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--tracking-uri", help="default: the local store under $NEWSFORGE_HOME/mlflow")
    serve.add_argument("--store", help="candidate store; default: $NEWSFORGE_HOME/serving/candidates.sqlite")
    serve.add_argument("--poll-seconds", type=float, default=10.0,
                       help="how often to look for a moved champion alias (default 10)")
    serve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    serve.add_argument("--require", default="ctr_model,ranker",
                       help="models whose champion must exist to start (default ctr_model,ranker; '' for none)")
    serve.set_defaults(func=_cmd_serve)

    retrain = sub.add_parser(
        "retrain", help="materialise a partition (or a range, in date order), then summarise the gate decisions "
                        "and evaluation tables (what CI retraining runs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status:\n"
               "  0  the run succeeded and every gate promoted its candidate (or no gate ran)\n"
               "  3  the run succeeded and at least one gate kept its champion (above the floor, not better\n"
               "     than the champion): no improvement, not an error; in CI: newsforge retrain ... || [ $? -eq 3 ]\n"
               "  1  a step failed, a gate whose candidate is below the floor included\n"
               "  2  bad arguments, or data that differs from dvc.lock")
    when = retrain.add_mutually_exclusive_group(required=True)
    when.add_argument("--partition", help="YYYY-MM-DD, or 'latest': the newest day of the prepared data")
    when.add_argument("--partition-range", help="START...END: a single-run backfill, days gated in date order "
                                                "(every selected asset needs a single-run backfill policy)")
    retrain.add_argument("--select", default="*", help="Dagster asset selection (default '*': the whole chain)")
    retrain.add_argument("-c", "--config", action="append", default=[], help="run config YAML (repeatable)")
    retrain.add_argument("--data", choices=("present", "pull", "repro"), default="present",
                         help="present (default): check the data matches dvc.lock; pull: `dvc pull` it from the "
                              "DVC remote first; repro: rebuild it with `dvc repro` first")
    retrain.add_argument("--out", type=Path, help="folder for summary.md, gates.json, report.md, report.html "
                                                  "(default $NEWSFORGE_HOME/retrain/<day>-<run>)")
    retrain.add_argument("--summary", type=Path, help="append the Markdown summary to this file "
                                                      "(default: $GITHUB_STEP_SUMMARY when set)")
    retrain.set_defaults(func=_cmd_retrain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # validation and format errors carry file/line details
        print(f"newsforge: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

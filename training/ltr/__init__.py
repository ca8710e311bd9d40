"""Two-stage LightGBM LambdaRank ranker of related news with a quality/click trade-off ("Explore Further").

* ``count_features``: windowed log counts, candidate age and cheap pair features (stage 1);
* ``stages``: ``train_ranker`` / ``Ranker`` (both stages, the λ combination, save/load);
* ``tradeoff``: parts by day role, the λ curve, the protocol's choice of λ on the selection day
  (``fit_ranker``), the report day's decision and the plot;
* ``rows``: feature rows of logged impressions and of the candidate store's lists, in batches;
* ``scorers``: the ranking student's and the CTR model's scores as the callables ``rows`` takes;
* ``feature_table``: the ``ltr_features`` table (every part by day role, grades, the served rows);
* ``report_day``: the ranker on the report day (the labelled slice, a served version's metrics, the baselines,
  per-seed retraining and the trade-off table).
"""
from training.ltr.count_features import (
    STAGE2_EXTRA,
    WINDOWS_DAYS,
    CountSnapshot,
    LogCounts,
    PairIndex,
    PathRanks,
    count_feature_names,
    pair_feature_names,
    pair_features,
)
from training.ltr.stages import (
    Ranker,
    RankerConfig,
    combine_scores,
    train_ranker,
    train_stage,
)
from training.ltr.tradeoff import (
    LAMBDAS,
    PARTS,
    LambdaChoice,
    TradeoffDecision,
    choose_lambda,
    fit_ranker,
    plot_tradeoff,
    row_parts,
    select_lambda,
    split_parts,
    tradeoff_curve,
    tradeoff_decision,
)

__all__ = [
    "LAMBDAS", "PARTS", "STAGE2_EXTRA", "WINDOWS_DAYS", "CountSnapshot", "LambdaChoice", "LogCounts", "PairIndex",
    "PathRanks", "Ranker", "RankerConfig", "TradeoffDecision",
    "choose_lambda", "combine_scores", "count_feature_names", "fit_ranker", "pair_feature_names", "pair_features",
    "plot_tradeoff", "row_parts", "select_lambda", "split_parts", "tradeoff_curve", "tradeoff_decision",
    "train_ranker", "train_stage",
]

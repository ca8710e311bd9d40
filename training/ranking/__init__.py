"""Two-stage LightGBM LambdaRank ranker of related news with a quality/click trade-off ("Explore Further").

* ``count_features``: windowed log counts, candidate age and cheap pair features (stage 1);
* ``stages``: ``train_ranker`` / ``Ranker`` (both stages, the λ combination, save/load);
* ``tradeoff``: the λ curve, the paper's choice of λ and its plot;
* ``rows``: feature rows of logged impressions and of the candidate store's lists, in batches.
"""
from training.ranking.count_features import (
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
from training.ranking.stages import (
    Ranker,
    RankerConfig,
    combine_scores,
    train_ranker,
    train_stage,
)
from training.ranking.tradeoff import (
    LAMBDAS,
    choose_lambda,
    plot_tradeoff,
    tradeoff_curve,
)

__all__ = [
    "LAMBDAS", "STAGE2_EXTRA", "WINDOWS_DAYS", "CountSnapshot", "LogCounts", "PairIndex", "PathRanks",
    "Ranker", "RankerConfig",
    "choose_lambda", "combine_scores", "count_feature_names", "pair_feature_names", "pair_features",
    "plot_tradeoff", "tradeoff_curve", "train_ranker", "train_stage",
]

"""ID-based CTR models (DCN, DeepFM, PNN) with optional frozen PREC news/user vectors (PREC §3.4).

Typical use::

    result = train_ctr_model(CtrData(train_imps, histories, news, news_emb, user_emb),
                             CtrData(valid_imps, histories, news, news_emb, user_emb),
                             CtrConfig(model="dcn", prec="news+user"), out_dir)
    scores = CtrPredictor.load(result.artefact_dir).score(imps, histories, news)
"""
from training.ctr.base_model import CtrModel
from training.ctr.config import MODEL_NAMES, PREC_VARIANTS, CtrConfig
from training.ctr.features import FIELD_NAMES, CtrData, CtrFeatures, FeatureSpace
from training.ctr.lightning_module import CtrLightningModule, ranking_metrics
from training.ctr.predict import CtrPredictor
from training.ctr.registry import MODEL_REGISTRY, build_model
from training.ctr.train import CtrTrainResult, train_ctr_model
from training.ctr.vocabulary import OOV, PAD, Vocabulary
from training.ctr.warm_start import WarmStartReport
from training.metrics.mind import METRIC_KEYS

__all__ = [
    "FIELD_NAMES", "METRIC_KEYS", "MODEL_NAMES", "MODEL_REGISTRY", "OOV", "PAD", "PREC_VARIANTS",
    "CtrConfig", "CtrData", "CtrFeatures", "CtrLightningModule", "CtrModel", "CtrPredictor",
    "CtrTrainResult", "FeatureSpace", "Vocabulary", "WarmStartReport", "build_model", "ranking_metrics",
    "train_ctr_model",
]

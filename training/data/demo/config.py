"""``DemoConfig``: sizes, time window and the known click-model weights of the demo dataset."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

#: The fields of the realism features (stories, sessions, story candidates, visible quality). Their defaults
#: switch every feature off, and then they are left out of :meth:`DemoConfig.to_dict` (so of
#: ``demo_report.json``): a default dataset keeps the bytes it had before the features existed.
REALISM_FIELDS = ("story_rate", "session_rate", "story_click_bonus", "story_candidate_share", "visible_quality",
                  "hidden_quality_share")
#: The intended "on" values of the realism features (``DemoConfig(**REALISM_ON)``; see docs/demo_data.md).
REALISM_ON: dict[str, Any] = {"story_rate": 0.4, "session_rate": 0.8, "story_click_bonus": 2.0,
                              "story_candidate_share": 0.15, "visible_quality": True}
#: Above this share of follow-ups, stories would need more news than a dataset has.
MAX_STORY_RATE = 0.6
#: The fields of the user signals (``user_signals.tsv``); left out of :meth:`DemoConfig.to_dict` while
#: ``user_signals`` is off, so a dataset without signals keeps its bytes.
SIGNAL_FIELDS = ("user_signals", "search_rate", "signal_noise", "follows_per_user")
#: Upper bound of ``search_rate`` and ``follows_per_user`` (a sanity check, far above any realistic value).
MAX_SIGNAL_RATE = 20.0


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines a demo dataset; the same config always writes the same bytes.

    News are published at a constant rate over ``[start - history_days, end)``; those published
    before ``start_day`` form the older pool that user histories are drawn from. Impressions fall in
    ``[start_day, start_day + n_days)``. The ``*_weight`` fields are the coefficients of the click
    logit documented in :mod:`training.data.demo.generator`; ``spam_rate`` and ``duplicate_rate`` are
    the shares of off-topic spam and near-duplicate news (see its quality model).

    The realism fields (``REALISM_FIELDS``, all off by default; intended values in ``REALISM_ON``):
    ``story_rate`` is the share of news that are follow-ups of a story, ``session_rate`` the share of
    impressions whose user read a live article (the *session trigger*) just before, ``story_click_bonus``
    the click-logit bonus of a candidate in the trigger's story (half of it for the trigger's entity),
    ``story_candidate_share`` the share of a triggered impression's candidates drawn from the trigger's
    neighbourhood, ``visible_quality`` makes the grade mostly visible evidence (source, clickbait marker,
    thin body, near-duplicate), ``hidden_quality_share`` being the variance share of the rest (used only
    when ``visible_quality`` is on).

    The user signals (``SIGNAL_FIELDS``; off by default): ``user_signals`` writes ``user_signals.tsv``,
    ``search_rate`` is the mean number of searches per user-day at activity 1 (Poisson, times the user's
    activity), ``signal_noise`` the share of searches drawn off-interest (and the uniform share of the follow
    weights), ``follows_per_user`` the mean number of topics a user follows at the window's start. The rates
    were set from data statistics only (docs/demo_data.md).
    """

    seed: int = 42
    n_news: int = 4000
    n_users: int = 5000
    start_day: str = "2019-11-09"
    n_days: int = 7
    impressions_per_day: int = 2500
    min_candidates: int = 10
    max_candidates: int = 100
    median_candidates: float = 33.0
    user_profiles: bool = True
    history_days: int = 14
    max_news_age_days: float = 3.0
    history_median: float = 18.0
    history_mean: float = 32.0
    max_history: int = 400
    empty_history_rate: float = 0.02
    empty_abstract_rate: float = 0.05
    target_ctr: float = 0.04
    interest_weight: float = 0.75
    popularity_weight: float = 1.5
    appeal_weight: float = 0.45
    position_weight: float = 0.12
    clickbait_weight: float = 1.5
    interest_drift: float = 0.15
    spam_rate: float = 0.04
    duplicate_rate: float = 0.05
    story_rate: float = 0.0
    session_rate: float = 0.0
    story_click_bonus: float = 0.0
    story_candidate_share: float = 0.0
    visible_quality: bool = False
    hidden_quality_share: float = 0.25
    user_signals: bool = False
    search_rate: float = 0.5
    signal_noise: float = 0.2
    follows_per_user: float = 3.0

    def __post_init__(self) -> None:
        for name in ("n_news", "n_users", "n_days", "impressions_per_day", "min_candidates", "history_days",
                     "max_history"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DemoConfig.{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"DemoConfig.seed must be a non-negative integer, got {self.seed!r}")
        try:
            date.fromisoformat(self.start_day)
        except (TypeError, ValueError):
            raise ValueError(
                f"DemoConfig.start_day must be an ISO date like '2019-11-09', got {self.start_day!r}") from None
        if not isinstance(self.max_candidates, int) or self.max_candidates < self.min_candidates:
            raise ValueError(
                f"DemoConfig.max_candidates ({self.max_candidates!r}) must be an integer "
                f">= min_candidates ({self.min_candidates})"
            )
        if self.min_candidates < 2:
            raise ValueError("DemoConfig.min_candidates must be >= 2 (an impression needs a click and a non-click), "
                             f"got {self.min_candidates}")
        if not self.min_candidates <= self.median_candidates <= self.max_candidates:
            raise ValueError(
                f"DemoConfig.median_candidates ({self.median_candidates}) must lie in "
                f"[min_candidates, max_candidates] = [{self.min_candidates}, {self.max_candidates}]"
            )
        if self.n_news < 50:
            raise ValueError(f"DemoConfig.n_news must be at least 50, got {self.n_news}")
        if not 0 < self.max_news_age_days <= self.history_days:
            raise ValueError(
                f"DemoConfig.max_news_age_days must be in (0, history_days={self.history_days}], "
                f"got {self.max_news_age_days}"
            )
        if not 1 <= self.history_median < self.history_mean:
            raise ValueError(
                f"DemoConfig.history_median ({self.history_median}) must be >= 1 and below history_mean "
                f"({self.history_mean}): "
                "history lengths are log-normal, so the mean exceeds the median"
            )
        for name in ("empty_history_rate", "empty_abstract_rate", "spam_rate", "duplicate_rate"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"DemoConfig.{name} must be in [0, 1), got {value}")
        if self.spam_rate + self.duplicate_rate >= 1:
            raise ValueError("DemoConfig.spam_rate + duplicate_rate must be below 1, "
                             f"got {self.spam_rate} + {self.duplicate_rate}")
        if not 0 < self.target_ctr < 0.5:
            raise ValueError(f"DemoConfig.target_ctr must be in (0, 0.5), got {self.target_ctr}")
        for name in ("interest_weight", "popularity_weight", "appeal_weight", "position_weight", "clickbait_weight",
                     "interest_drift"):
            value = getattr(self, name)
            if not 0 <= value <= 10:
                raise ValueError(f"DemoConfig.{name} must be in [0, 10], got {value}")
        self._check_realism()
        self._check_signals()

    def _check_signals(self) -> None:
        if not isinstance(self.user_signals, bool):
            raise ValueError(f"DemoConfig.user_signals must be True or False, got {self.user_signals!r}")
        for name in ("search_rate", "follows_per_user"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_SIGNAL_RATE:
                raise ValueError(f"DemoConfig.{name} must be a number in [0, {MAX_SIGNAL_RATE:g}], got {value!r}")
        if isinstance(self.signal_noise, bool) or not isinstance(self.signal_noise, int | float) \
                or not 0 <= self.signal_noise <= 1:
            raise ValueError(f"DemoConfig.signal_noise (share of off-interest searches) must be in [0, 1], "
                             f"got {self.signal_noise!r}")

    def _check_realism(self) -> None:
        if not 0 <= self.story_rate <= MAX_STORY_RATE:
            raise ValueError(f"DemoConfig.story_rate (share of news that are story follow-ups) must be in "
                             f"[0, {MAX_STORY_RATE}], got {self.story_rate}")
        for name in ("session_rate", "story_candidate_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"DemoConfig.{name} must be in [0, 1], got {value}")
        if not 0 <= self.story_click_bonus <= 10:
            raise ValueError(f"DemoConfig.story_click_bonus must be in [0, 10], got {self.story_click_bonus}")
        if not isinstance(self.visible_quality, bool):
            raise ValueError(f"DemoConfig.visible_quality must be True or False, got {self.visible_quality!r}")
        if not 0 <= self.hidden_quality_share < 1:
            raise ValueError(f"DemoConfig.hidden_quality_share (hidden variance share of the grade latent) must be "
                             f"in [0, 1), got {self.hidden_quality_share}")

    @property
    def realism(self) -> bool:
        """Whether any realism feature is on (then ``to_dict`` and the report carry the realism fields)."""
        return (self.story_rate > 0 or self.session_rate > 0 or self.story_click_bonus > 0
                or self.story_candidate_share > 0 or self.visible_quality)

    @classmethod
    def tiny(cls, seed: int = 42, **overrides: Any) -> DemoConfig:
        """A config that generates in about a second (for tests): 300 news, 200 users, 3 days."""
        base: dict[str, Any] = dict(seed=seed, n_news=300, n_users=200, n_days=3, impressions_per_day=100,
                                    history_days=7, max_candidates=60, median_candidates=25.0)
        return cls(**{**base, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DemoConfig:
        """Build from a dict such as ``DemoReport.config``; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DemoConfig fields: {unknown}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """All fields; the realism fields only when a realism feature is on (``REALISM_FIELDS``), the signal
        fields only with ``user_signals`` on (``SIGNAL_FIELDS``)."""
        values = asdict(self)
        left_out = (() if self.realism else REALISM_FIELDS) + (() if self.user_signals else SIGNAL_FIELDS)
        for name in left_out:
            del values[name]
        return values

    @property
    def start(self) -> datetime:
        """Midnight (naive, read as UTC) of ``start_day``."""
        return datetime.combine(date.fromisoformat(self.start_day), datetime.min.time())

    @property
    def days(self) -> list[str]:
        """The impression days, ``YYYY-MM-DD``."""
        first = date.fromisoformat(self.start_day)
        return [(first + timedelta(days=d)).isoformat() for d in range(self.n_days)]

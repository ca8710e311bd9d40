"""(trigger, candidate) pairs from impression logs, for quality-aware ranking ("Explore Further", KDD'25).

The *trigger* of an impression is the article its user is reading: the newest item of their click history
that is in the news catalogue. Each logged candidate of the impression becomes a pair
``(trigger, candidate, clicked)``. Impressions whose history has no catalogue item have no trigger; they are
counted, not silently dropped (``PairLogs.n_without_trigger``), and so are candidates outside the catalogue.

The window's days have roles (docs/explore_further_protocol.md): the **fit** days (all but the last two) train
every learner, the **early-stopping** day (the second last) chooses epochs and iterations, the **selection**
day (the last) chooses the trade-off's λ and nothing else; the partition day is the **test** (report) day. A
window of fewer than 3 days cannot keep the roles apart: the early-stopping day then also selects (and with
one day, it also fits), which ``PairLogs.roles_shared`` says.

From the fit days' pairs come

* **triplets** ``(trigger, clicked, not clicked)`` of one impression, for the click teacher's pairwise
  softmax loss. ``frequency`` counts how often the same triplet occurs in the logs; ``weight = 1 + ln(frequency)``,
  so a triplet seen once keeps weight 1 (the paper's plain ``ln(frequency)`` would give singletons weight 0,
  and in a few days of logs nearly every triplet is a singleton);
* the **unlabelled pair set**: distinct (trigger, candidate) pairs the teachers label for distillation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.data.prepared import BehaviorLog

PAIR_COLUMNS = ("impression_id", "day", "position", "trigger_id", "candidate_id", "clicked")
ROLES = ("fit", "early_stopping", "selection", "test")  #: the ``role`` of a pair's day, in time order


def day_roles(window: list[str]) -> tuple[list[str], str, str]:
    """(fit days, early-stopping day, selection day) of a window of days in time order."""
    if not window:
        raise ValueError("the window before the partition has no days")
    if len(window) >= 3:
        return window[:-2], window[-2], window[-1]
    if len(window) == 2:
        return window[:1], window[1], window[1]
    return window, window[0], window[0]


@dataclass
class PairLogs:
    """Pairs of a partition: ``train`` (the window before it) and ``test`` (the partition day); each pair's
    ``role`` says which use its day has (``ROLES``)."""

    pairs: pd.DataFrame        # PAIR_COLUMNS + part ("train" | "test") + role (ROLES)
    triplets: pd.DataFrame     # trigger_id, pos_id, neg_id, frequency, weight (fit days, sampled)
    unlabelled: pd.DataFrame   # trigger_id, candidate_id (distinct fit-day pairs, sampled)
    n_without_trigger: int     # impressions without a catalogue item in their history
    n_outside_catalogue: int   # candidate rows whose news is not in the catalogue
    n_triplets_total: int      # distinct fit-day triplets before sampling
    train_days: list[str]      # the whole window: fit days, early-stopping day, selection day
    test_day: str
    fit_days: list[str]
    early_stopping_day: str
    selection_day: str
    early_stopping_triplets: pd.DataFrame   # the early-stopping day's triplets (sampled like ``triplets``)

    @property
    def roles_shared(self) -> bool:
        """True when the window is too short (< 3 days) to give each role a day of its own."""
        return self.selection_day == self.early_stopping_day or self.early_stopping_day in self.fit_days

    def part(self, name: str) -> pd.DataFrame:
        return self.pairs[self.pairs["part"] == name].reset_index(drop=True)

    def role(self, *names: str) -> pd.DataFrame:
        """The pairs of the days with any of the given roles (``ROLES``)."""
        unknown = set(names) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
        days = {d for name in names for d in self.days(name)}
        return self.pairs[self.pairs["day"].isin(days)].reset_index(drop=True)

    def days(self, role: str) -> list[str]:
        """The days of one role (``ROLES``), in time order."""
        by_role = {"fit": self.fit_days, "early_stopping": [self.early_stopping_day],
                   "selection": [self.selection_day], "test": [self.test_day]}
        if role not in by_role:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        return list(by_role[role])


def impression_triggers(histories: pd.DataFrame, catalogue: set[str]) -> pd.Series:
    """``impression_id`` -> trigger news id (the newest history item in ``catalogue``); impressions without
    one are absent."""
    triggers = {}
    for impression_id, history in zip(histories["impression_id"].to_numpy(), histories["history"]):
        for news_id in reversed(list(history)):
            if news_id in catalogue:
                triggers[int(impression_id)] = news_id
                break
    return pd.Series(triggers, dtype=object, name="trigger_id")


def logged_pairs(log: BehaviorLog, catalogue: set[str]) -> tuple[pd.DataFrame, int, int]:
    """(pairs, impressions without a trigger, candidate rows outside the catalogue) of ``log``."""
    triggers = impression_triggers(log.histories, catalogue)
    imps = log.impressions
    has_trigger = imps["impression_id"].isin(triggers.index)
    known = imps["news_id"].isin(catalogue)
    rows = imps[has_trigger & known]
    pairs = pd.DataFrame({
        "impression_id": rows["impression_id"].to_numpy(np.int64),
        "day": rows["day"].to_numpy(),
        "position": rows["position"].to_numpy(np.int32),
        "trigger_id": rows["impression_id"].map(triggers).to_numpy(),
        "candidate_id": rows["news_id"].to_numpy(),
        "clicked": rows["label"].to_numpy(np.int8),
    })
    return pairs, int(len(log.histories) - len(triggers)), int((~known).sum())


def click_triplets(pairs: pd.DataFrame) -> pd.DataFrame:
    """Distinct (trigger, clicked, not clicked) triplets of the same impression with frequency and weight."""
    pos = pairs[pairs["clicked"] == 1][["impression_id", "trigger_id", "candidate_id"]]
    neg = pairs[pairs["clicked"] == 0][["impression_id", "candidate_id"]]
    joined = pos.merge(neg, on="impression_id", suffixes=("_pos", "_neg"))
    joined = joined.rename(columns={"candidate_id_pos": "pos_id", "candidate_id_neg": "neg_id"})
    joined = joined[joined["pos_id"] != joined["neg_id"]]
    counts = joined.groupby(["trigger_id", "pos_id", "neg_id"], sort=True).size().rename("frequency").reset_index()
    counts["weight"] = triplet_weight(counts["frequency"].to_numpy())
    return counts


def triplet_weight(frequency: np.ndarray) -> np.ndarray:
    """``1 + ln(frequency)``: the log-frequency weight with singletons kept at 1."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if (frequency < 1).any():
        raise ValueError("triplet frequencies must be >= 1")
    return 1.0 + np.log(frequency)


def _sample(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if limit <= 0 or len(frame) <= limit:
        return frame.reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=limit, replace=False))
    return frame.iloc[rows].reset_index(drop=True)


def build_pair_logs(news: pd.DataFrame, log: BehaviorLog, day: str, window_days: int, *,
                    max_triplets: int = 0, max_unlabelled: int = 0, seed: int = 0) -> PairLogs:
    """Pairs of the ``window_days`` days before ``day`` (train) and of ``day`` (test); triplets and the
    unlabelled set from the fit days, the early-stopping triplets from the early-stopping day, each sampled
    (seeded) down to its limit (0, the default: keep all)."""
    if window_days < 1:
        raise ValueError(f"window_days must be >= 1, got {window_days}")
    if day not in log.days:
        raise ValueError(f"no impressions on {day}; days present: {', '.join(log.days)}")
    before = log.before(day, window_days)
    if before.histories.empty:
        raise ValueError(f"no impressions in the {window_days} day(s) before {day}; "
                         f"days present: {', '.join(log.days)}")
    catalogue = set(news["news_id"])
    train, n_no_trigger_train, n_out_train = logged_pairs(before, catalogue)
    test, n_no_trigger_test, n_out_test = logged_pairs(log.select_days([day]), catalogue)
    fit_days, early_stopping_day, selection_day = day_roles(list(before.days))
    # a day with several roles (short windows) is labelled by its first use: fit, then early stopping
    role_of = {selection_day: "selection", early_stopping_day: "early_stopping", **{d: "fit" for d in fit_days}}
    train = train.assign(part="train", role=train["day"].map(role_of))
    pairs = pd.concat([train, test.assign(part="test", role="test")], ignore_index=True)
    fit = train[train["day"].isin(fit_days)]
    triplets = click_triplets(fit)
    es_triplets = click_triplets(train[train["day"] == early_stopping_day])
    unlabelled = fit[["trigger_id", "candidate_id"]].drop_duplicates().sort_values(["trigger_id", "candidate_id"])
    return PairLogs(
        pairs=pairs, triplets=_sample(triplets, max_triplets, seed),
        unlabelled=_sample(unlabelled, max_unlabelled, seed + 1),
        n_without_trigger=n_no_trigger_train + n_no_trigger_test, n_outside_catalogue=n_out_train + n_out_test,
        n_triplets_total=len(triplets), train_days=list(before.days), test_day=day, fit_days=list(fit_days),
        early_stopping_day=early_stopping_day, selection_day=selection_day,
        early_stopping_triplets=_sample(es_triplets, max_triplets, seed + 2))

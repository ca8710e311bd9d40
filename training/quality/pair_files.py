"""User-supplied pair files: judge labels (``labels_file``) and golden sets, validated row by row.

Both are UTF-8 TSV files, one pair per line: ``trigger_id <TAB> candidate_id <TAB> value``, an optional
header line starting with ``trigger_id``, blank lines and ``#`` comments ignored. Any bad row rejects the
whole file with an error naming the file, line and field: a judge's labels are not partially trusted.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from training.data.validation import RowIssue

GOLDEN_LABELS = {"good": 1, "bad": 0, "1": 1, "0": 0}


class PairFileError(ValueError):
    """A pair file has bad rows; ``issues`` names each one."""

    def __init__(self, path: str | Path, issues: list[RowIssue], shown: int = 20) -> None:
        self.issues = issues
        lines = [f"{path}: {len(issues)} bad row(s); the file is rejected"] + [f"  {i}" for i in issues[:shown]]
        if len(issues) > shown:
            lines.append(f"  ... and {len(issues) - shown} more")
        super().__init__("\n".join(lines))


def parse_score(text: str) -> float:
    """A judge score: a finite number in [0, 4]."""
    value = float(text)
    if not math.isfinite(value) or not 0.0 <= value <= 4.0:
        raise ValueError(f"score must be a number in [0, 4], got {text!r}")
    return value


def parse_golden_label(text: str) -> int:
    """Good/Bad (or 1/0) -> 1/0."""
    try:
        return GOLDEN_LABELS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"label must be Good or Bad (or 1 / 0), got {text!r}") from None


def read_pair_file(path: str | Path, news_ids: set[str], value_name: str,
                   parse: Callable[[str], float | int]) -> pd.DataFrame:
    """Rows ``trigger_id, candidate_id, <value_name>`` of a pair file; every id must be in ``news_ids`` and
    every (trigger, candidate) pair must appear once."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file {path} does not exist")
    name = str(path)
    rows: list[tuple[str, str, float | int]] = []
    issues: list[RowIssue] = []
    seen: dict[tuple[str, str], int] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.startswith("#") or (line_no == 1 and line.startswith("trigger_id")):
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                issues.append(RowIssue(name, line_no, "row", f"expected 3 tab-separated fields (trigger_id, "
                                       f"candidate_id, {value_name}), got {len(fields)}"))
                continue
            trigger, candidate, text = (f.strip() for f in fields)
            bad = False
            for field, value in (("trigger_id", trigger), ("candidate_id", candidate)):
                if value not in news_ids:
                    issues.append(RowIssue(name, line_no, field, f"news id {value!r} is not in the news catalogue"))
                    bad = True
            try:
                parsed = parse(text)
            except ValueError as err:
                issues.append(RowIssue(name, line_no, value_name, str(err)))
                bad = True
            if bad:
                continue
            if (trigger, candidate) in seen:
                issues.append(RowIssue(name, line_no, "candidate_id", f"pair ({trigger}, {candidate}) already "
                                       f"given on line {seen[(trigger, candidate)]}"))
                continue
            seen[(trigger, candidate)] = line_no
            rows.append((trigger, candidate, parsed))
    if issues:
        raise PairFileError(path, issues)
    if not rows:
        raise PairFileError(path, [RowIssue(name, 0, "file", "no pairs")])
    return pd.DataFrame(rows, columns=["trigger_id", "candidate_id", value_name])
